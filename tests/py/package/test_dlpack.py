"""DLPack both ways on the CPU, zero-copy, with numpy and PyTorch."""
import numpy as np
import pytest

import spore
from spore import Tensor

torch = pytest.importorskip("torch")


def test_numpy_to_spore_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = spore.from_dlpack(a)
    a[0, 0] = 100
    assert t.tolist() == [[100.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert t.data_ptr() == a.ctypes.data
    del a
    assert (t * 1).sum().item() == 115.0  # the memory outlives the array


def test_spore_to_numpy_shares_memory():
    t = Tensor(np.arange(4, dtype=np.int64))
    b = np.from_dlpack(t)
    assert b.ctypes.data == t.data_ptr() and b.tolist() == [0, 1, 2, 3]
    assert t.__dlpack_device__() == (1, 0)


def test_torch_both_ways_zero_copy():
    x = torch.arange(6.0).reshape(2, 3)
    s = spore.from_dlpack(x)
    x[1, 1] = -7
    assert s.data_ptr() == x.data_ptr() and s.tolist()[1][1] == -7.0
    s2 = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)).T  # a strided view
    y = torch.utils.dlpack.from_dlpack(s2)
    assert y.data_ptr() == s2.data_ptr() and y.stride() == (1, 3)
    assert y.tolist() == s2.tolist()
    z = spore.from_dlpack(torch.utils.dlpack.to_dlpack(torch.ones(3, dtype=torch.float64)))
    assert z.dtype == spore.float64 and z.tolist() == [1.0, 1.0, 1.0]
