"""spore.Tensor: construction, dtypes, operators, indexing, methods, printing,
numpy interop, all against numpy."""
import numpy as np
import pytest

import spore
from spore import Tensor
from spore.common import dtype as mstype


def test_from_numpy_keeps_dtype_and_copies():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = Tensor(a)
    assert t.dtype == spore.float64 and t.shape == (2, 3) and t.ndim == 2 and t.size == 6
    a[0, 0] = 99
    assert t.asnumpy()[0, 0] == 0.0


@pytest.mark.parametrize("np_dtype,sp_dtype", [
    (np.float32, spore.float32), (np.float16, spore.float16), (np.int8, spore.int8),
    (np.uint8, spore.uint8), (np.int32, spore.int32), (np.int64, spore.int64), (np.bool_, spore.bool_)])
def test_dtype_round_trip(np_dtype, sp_dtype):
    a = (np.arange(5) % 2 == 0) if np_dtype is np.bool_ else np.arange(5).astype(np_dtype)
    t = Tensor(a)
    assert t.dtype == sp_dtype and isinstance(t.dtype, mstype.Type)
    np.testing.assert_array_equal(t.asnumpy(), a)
    assert t.asnumpy().dtype == a.dtype


def test_from_lists_scalars_and_dtype_argument():
    assert Tensor([1, 2, 3]).dtype == spore.int64
    assert Tensor([1.0, 2.0]).dtype == spore.float32
    assert Tensor(True).dtype == spore.bool_ and Tensor(True).shape == ()
    t = Tensor([[1, 2], [3, 4]], spore.float32)
    assert t.dtype == spore.float32 and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Tensor(2.5).item() == 2.5
    b = Tensor(np.ones(3, np.float32), dtype=spore.bfloat16)
    assert b.dtype == spore.bfloat16 and b.asnumpy().tolist() == [1.0, 1.0, 1.0]
    assert Tensor(shape=(2, 3), dtype=spore.int32).asnumpy().tolist() == [[0, 0, 0], [0, 0, 0]]


NP_SCALARS = [(np.float16, spore.float16), (np.float32, spore.float32), (np.float64, spore.float64),
              (np.int8, spore.int8), (np.int32, spore.int32), (np.int64, spore.int64),
              (np.uint8, spore.uint8), (np.bool_, spore.bool_)]


@pytest.mark.parametrize("np_type,sp_dtype", NP_SCALARS)
def test_numpy_scalars_keep_their_dtype(np_type, sp_dtype):
    # a numpy scalar is typed (np.float32(1.5) is float32, not a Python
    # float); a list or tuple of them is the array numpy makes of it
    x = np_type(1)
    t = Tensor(x)
    assert t.dtype == sp_dtype and t.shape == (), (np_type, t.dtype)
    assert t.asnumpy().item() == x
    seq = Tensor([np_type(1), np_type(0), np_type(1)])
    assert seq.dtype == sp_dtype and seq.shape == (3,), (np_type, seq.dtype)
    np.testing.assert_array_equal(seq.asnumpy(), np.asarray([np_type(1), np_type(0), np_type(1)]))
    nested = Tensor(((np_type(1),), (np_type(0),)))
    assert nested.dtype == sp_dtype and nested.shape == (2, 1)
    assert Tensor([np_type(1)], spore.float32).dtype == spore.float32  # dtype= still wins


def test_numpy_scalar_values_and_python_scalar_rule():
    assert Tensor(np.float32(1.5)).dtype == spore.float32 and Tensor(np.float32(1.5)).item() == 1.5
    assert Tensor([np.float32(1.5), np.float32(-2.25)]).asnumpy().tolist() == [1.5, -2.25]
    assert Tensor([np.int8(-3), np.int8(7)]).asnumpy().tolist() == [-3, 7]
    # mixed numpy dtypes promote as numpy does
    assert Tensor([np.int8(1), np.int32(2)]).dtype == spore.int32
    # MindSpore 2.x: a Python float is float32, an int int64, a bool bool_
    assert Tensor(1.5).dtype == spore.float32 and Tensor(1.5).shape == ()
    assert Tensor(2).dtype == spore.int64 and Tensor(2).item() == 2
    assert Tensor(True).dtype == spore.bool_
    assert Tensor([1.5, 2]).dtype == spore.float32 and Tensor([True, False]).dtype == spore.bool_
    with pytest.raises(TypeError, match="int16"):
        Tensor(np.int16(2))  # no int16 in Spore: an error naming it, not a silent cast


def test_non_contiguous_numpy_input():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[::-1, ::2]
    np.testing.assert_array_equal(Tensor(a).asnumpy(), a)


def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32) + 3
    x, y = Tensor(a), Tensor(b)
    close = lambda t, r: np.testing.assert_allclose(t.asnumpy(), r, rtol=1e-5, atol=1e-6)  # noqa: E731
    close(x + y, a + b)
    close(x - y, a - b)
    close(x * y, a * b)
    close(x / y, a / b)
    close(x // y, a // b)
    close(x % y, np.mod(a, b))
    close(abs(x) ** 0.5, np.abs(a) ** 0.5)
    close(-x, -a)
    close(x @ y.T, a @ b.T)
    close(2 - x, 2 - a)
    close(x * 2, a * 2)
    assert (x * 2).dtype == spore.float32  # Python scalars are weakly typed
    np.testing.assert_array_equal((x < y).asnumpy(), a < b)
    np.testing.assert_array_equal((x == x).asnumpy(), np.ones((3, 4), bool))
    np.testing.assert_array_equal((x >= 0).asnumpy(), a >= 0)


def test_indexing():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(a)
    for idx in [1, -1, (1, 2), slice(None, None, -1), (Ellipsis, 1), (None, 0), (slice(0, 2), None, 1),
                (1, slice(None, None, 2), slice(1, 3))]:
        np.testing.assert_array_equal(t[idx].asnumpy(), a[idx])
    np.testing.assert_array_equal(t[Tensor([1, 0])].asnumpy(), a[[1, 0]])
    with pytest.raises(IndexError):
        t[5]
    assert [r.shape for r in t] == [(3, 4), (3, 4)] and len(t) == 2


def test_methods():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a)
    assert t.sum().item() == 15.0 and t.mean().item() == 2.5
    assert t.max().item() == 5.0 and t.min().item() == 0.0
    np.testing.assert_array_equal(t.sum(axis=1).asnumpy(), a.sum(1))
    np.testing.assert_array_equal(t.mean(axis=0, keep_dims=True).asnumpy(), a.mean(0, keepdims=True))
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((6,)).shape == (6,)
    np.testing.assert_array_equal(t.transpose().asnumpy(), a.T)
    np.testing.assert_array_equal(t.T.asnumpy(), a.T)
    assert t.astype(spore.int32).dtype == spore.int32
    assert t.astype(spore.int32).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert t[1, 2].item() == 5.0 and int(t[1, 2]) == 5 and float(t[0, 1]) == 1.0
    assert bool(Tensor(1.0)) and not bool(Tensor(0.0))
    with pytest.raises(TypeError, match="ambiguous"):
        bool(t)
    assert t.to("CPU").tolist() == t.tolist()


def test_printing_like_mindspore():
    t = Tensor(np.array([4.0, 10.0, 18.0], np.float32))
    assert str(t) == "[ 4. 10. 18.]"
    assert repr(t) == "Tensor(shape=[3], dtype=Float32, value= [ 4. 10. 18.])"
    assert str(Tensor([[1, 2], [3, 4]])) == "[[1 2]\n [3 4]]"


def test_numpy_interop_shares_memory():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = t.asnumpy()
    assert a.ctypes.data == t.data_ptr()
    m = memoryview(t)
    assert m.format == "f" and m.shape == (2, 3) and m.strides == (12, 4)
    tt = t.T
    np.testing.assert_array_equal(np.asarray(tt), np.arange(6, dtype=np.float32).reshape(2, 3).T)
    assert np.asarray(tt).ctypes.data == t.data_ptr()  # a strided view, no copy
    assert np.array(t, dtype=np.float64).dtype == np.float64


def test_errors_are_python_exceptions():
    with pytest.raises(ValueError, match="shape"):
        Tensor(np.ones((2, 3), np.float32)) + Tensor(np.ones((4,), np.float32))
    with pytest.raises(TypeError):
        Tensor(np.ones(2, np.int16))
    with pytest.raises(TypeError):
        Tensor(np.ones(2, np.float32)) + "a"
    with pytest.raises(ValueError, match="could not broadcast"):
        Tensor([1.0])[0] = [1.0, 2.0]


def test_parameter_and_tuple():
    p = spore.Parameter(Tensor([1.0, 2.0]), name="w")
    assert isinstance(p, spore.Tensor) and p.name == "w" and p.requires_grad
    assert (p * 2).tolist() == [2.0, 4.0]
    p.set_data(Tensor([5.0, 6.0]))
    assert p.tolist() == [5.0, 6.0]
    pt = spore.ParameterTuple([p])
    assert pt[0] is p
    with pytest.raises(TypeError):
        spore.ParameterTuple([Tensor([1.0])])
