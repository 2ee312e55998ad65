"""Tensor.__setitem__: x[index] = value in place, against numpy's semantics
for every index form (basic, bool mask, integer arrays), value dtypes,
broadcasting, views sharing memory, and the errors numpy raises."""
import numpy as np
import pytest

import spore
from spore import Tensor, nn, ops


def base(dtype=np.float32, shape=(4, 5, 3)):
    return (np.arange(int(np.prod(shape))) - 7).reshape(shape).astype(dtype)


def check(index, value, dtype=np.float32, shape=(4, 5, 3), value_is_tensor=False):
    """Assigns value at index into a Tensor and into numpy; both agree."""
    a = base(dtype, shape)
    t = Tensor(a.copy())
    ptr = t.data_ptr()
    v = Tensor(value) if value_is_tensor else value
    t[index] = v
    a[index] = value
    assert t.data_ptr() == ptr, "assignment must be in place"
    assert t.asnumpy().dtype == a.dtype
    np.testing.assert_array_equal(t.asnumpy(), a)


BASIC = [
    0, -1, 3, (1, 2), (1, 2, 0), (-1, -2, -3),
    slice(None), slice(1, 3), slice(None, None, 2), slice(3, 0, -1), slice(-2, None), slice(5, 9),
    (slice(None), 1), (slice(None), slice(1, 4)), (slice(None), slice(1, 4), 2), (Ellipsis, 1),
    (1, Ellipsis), (Ellipsis,), (None, 1), (slice(None), None, slice(0, 2)), (1, slice(None, None, -2), None),
    (slice(0, 0),),
]


@pytest.mark.parametrize("index", BASIC, ids=[repr(i) for i in BASIC])
def test_basic_index_scalar(index):
    check(index, 2.5)


@pytest.mark.parametrize("index", BASIC, ids=[repr(i) for i in BASIC])
def test_basic_index_array_value_broadcasts(index):
    target = base()[index].shape
    # a value of the target's full shape, and one broadcasting along the first axis
    full = np.random.default_rng(0).standard_normal(target).astype(np.float32)
    check(index, full)
    check(index, full, value_is_tensor=True)
    if len(target) >= 1:
        check(index, full[..., :1] if target[-1] else full)


def test_value_dtypes_are_converted_like_numpy():
    check((1, 2), 2.9, dtype=np.int32)          # float -> int truncates
    check((1, slice(None)), -3.7, dtype=np.int64)
    check(0, 0.0, dtype=np.bool_)
    check(1, 5, dtype=np.bool_)                  # nonzero -> True
    check(2, np.arange(3, dtype=np.float64) + 0.5, dtype=np.float32)
    check(slice(None), np.ones((5, 3), np.int64), dtype=np.float16)
    check(1, Tensor(np.full((5, 3), 7, np.int32)).asnumpy(), dtype=np.float64)
    check(0, True, dtype=np.float32)
    # a Tensor value of another dtype, converted into x's
    t = Tensor(np.zeros(4, np.int32))
    t[1:3] = Tensor(np.array([1.9, -2.9], np.float32))
    assert t.asnumpy().tolist() == [0, 1, -2, 0] and t.dtype == spore.int32


def test_python_lists_and_nested_values():
    check(0, [[1.0, 2.0, 3.0]] * 5)
    check((slice(None), 0), [1, 2, 3])                     # broadcast a row to every row
    check((slice(None), slice(None), 0), [[9], [8], [7], [6]])


def test_leading_unit_axes_of_the_value_are_dropped():
    check(0, np.ones((1, 1, 5, 3), np.float32))


BOOL_MASKS = [
    lambda a: a > 0,                          # full shape
    lambda a: a[:, :, 0] > 0,                 # leading two axes
    lambda a: np.array([True, False, True, False]),
    lambda a: np.zeros(4, bool),              # nothing selected
    lambda a: np.ones((4, 5), bool),
]


@pytest.mark.parametrize("k", range(len(BOOL_MASKS)))
def test_bool_mask_with_a_scalar(k):
    m = BOOL_MASKS[k](base())
    check(m, -1.5)
    a, t = base(), Tensor(base())
    t[Tensor(m)] = 0.0
    a[m] = 0.0
    np.testing.assert_array_equal(t.asnumpy(), a)


@pytest.mark.parametrize("k", range(len(BOOL_MASKS)))
def test_bool_mask_with_a_row_per_selected_position(k):
    a = base()
    m = BOOL_MASKS[k](a)
    n = int(m.sum())
    rows = np.arange(n * int(np.prod(a.shape[m.ndim:])), dtype=np.float32).reshape((n,) + a.shape[m.ndim:]) + 100
    check(m, rows)
    check(m, rows, value_is_tensor=True)


def test_bool_mask_with_a_value_broadcasting_to_each_row():
    a = base()
    check(np.array([True, False, True, True]), np.arange(3, dtype=np.float32))      # (3,) into rows (5, 3)
    check(np.array([True, False, True, True]), np.arange(15, dtype=np.float32).reshape(5, 3))
    check(a[:, :, 0] > 0, np.array([1.0, 2.0, 3.0], np.float32))
    check([True, False, True, False], 4.0)          # a list of bools is a mask, as in numpy


def test_bool_mask_int_tensor_and_int_value():
    check(base(np.int32) % 3 == 0, 0, dtype=np.int32)
    check(base(np.int64)[:, 0, 0] > -5, np.int64(42), dtype=np.int64)


INT_INDICES = [
    [0, 2], [3], [-1, 0], [1, 1, 2], np.array([[0, 1], [3, 2]]), np.array([2], np.int32), [],
]


@pytest.mark.parametrize("index", INT_INDICES, ids=[repr(i) for i in INT_INDICES])
def test_integer_array_index(index):
    idx = np.asarray(index, dtype=np.int64)
    shape = idx.shape + (5, 3)
    rng = np.random.default_rng(1)
    check(index, 3.0)
    check(index, rng.standard_normal(shape).astype(np.float32))
    check(index, rng.standard_normal((3,)).astype(np.float32))      # one row for all
    if idx.size:
        a, t = base(), Tensor(base())
        v = rng.standard_normal(shape).astype(np.float32)
        t[Tensor(idx)] = Tensor(v)
        a[idx] = v
        np.testing.assert_array_equal(t.asnumpy(), a)


def test_repeated_integer_indices_last_wins():
    a, t = np.zeros(4, np.float32), Tensor(np.zeros(4, np.float32))
    a[[1, 1, 3]] = [5.0, 6.0, 7.0]
    t[[1, 1, 3]] = [5.0, 6.0, 7.0]
    np.testing.assert_array_equal(t.asnumpy(), a)
    assert t.asnumpy()[1] == 6.0


def test_zero_d_tensor_and_tensor_int_index():
    t = Tensor(np.array(3.0, np.float32))
    t[...] = 8.0
    assert t.asnumpy() == 8.0
    t[()] = 9.0
    assert t.item() == 9.0
    x = Tensor(np.zeros((3, 2), np.float32))
    x[Tensor(np.array(1, np.int64))] = 4.0           # a 0-d integer tensor is a plain int index
    np.testing.assert_array_equal(x.asnumpy(), [[0, 0], [4, 4], [0, 0]])


def test_views_share_the_write():
    a = base()
    t = Tensor(a.copy())
    v = t[1]                       # a view of t
    v[0] = 100.0
    a[1][0] = 100.0
    np.testing.assert_array_equal(t.asnumpy(), a)
    tt = t.T                       # a strided view: writes land in t
    tt[0, 0, 0] = -50.0
    a.T[0, 0, 0] = -50.0
    np.testing.assert_array_equal(t.asnumpy(), a)


def test_overlapping_value_is_read_before_writing():
    a = np.arange(8, dtype=np.float32)
    t = Tensor(a.copy())
    t[1:] = t[:-1]
    a[1:] = a[:-1].copy()
    np.testing.assert_array_equal(t.asnumpy(), a)
    t[[0, 1, 2]] = t[[5, 0, 1]]
    a[[0, 1, 2]] = a[[5, 0, 1]]
    np.testing.assert_array_equal(t.asnumpy(), a)
    m = np.array([True, False] * 4)
    t[Tensor(m)] = t[::2] * 0 + t[1::2]
    a[m] = a[1::2]
    np.testing.assert_array_equal(t.asnumpy(), a)


def test_shape_mismatch_is_a_clear_error_and_writes_nothing():
    t = Tensor(base())
    before = t.asnumpy().copy()
    with pytest.raises(ValueError, match=r"could not broadcast input array from shape \(4,\) into shape \(5, 3\)"):
        t[0] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="could not broadcast"):
        t[[0, 1]] = np.ones((3, 5, 3), np.float32)
    with pytest.raises(ValueError, match="could not broadcast"):
        t[base() > 0] = np.ones(2, np.float32)
    np.testing.assert_array_equal(t.asnumpy(), before)


def test_index_errors():
    t = Tensor(base())
    before = t.asnumpy().copy()
    with pytest.raises(IndexError, match="out of bounds"):
        t[4] = 1.0
    with pytest.raises(IndexError, match="out of bounds"):
        t[[0, 9]] = 1.0
    with pytest.raises(IndexError, match="boolean index did not match"):
        t[np.ones(3, bool)] = 1.0
    with pytest.raises(IndexError, match="tensor indices must be integers or booleans"):
        t[np.array([0.5])] = 1.0
    with pytest.raises((ValueError, IndexError), match="too many indices"):
        t[0, 0, 0, 0] = 1.0
    with pytest.raises(TypeError, match="does not support item deletion"):
        del t[0]
    with pytest.raises(TypeError, match="cannot (use|assign) a value of type"):
        t[0] = object()
    np.testing.assert_array_equal(t.asnumpy(), before)


def test_parameter_item_assignment_is_seen_by_its_users():
    p = spore.Parameter(Tensor(np.zeros((2, 3), np.float32)), name="w")
    p[0, 1:] = 1.0
    x = Tensor(np.ones((3,), np.float32))
    np.testing.assert_allclose(ops.matmul(p, x).asnumpy(), [2.0, 0.0])


def test_graph_mode_construct_rejects_item_assignment():
    class Net(nn.Cell):
        def construct(self, x):
            x[0] = 1.0
            return x

    spore.set_context(mode=spore.GRAPH_MODE)
    with pytest.raises(NotImplementedError, match="assignment to a subscript"):
        Net()(Tensor(np.zeros(3, np.float32)))


@pytest.mark.skipif(not spore._C.cuda_available()[0], reason="no GPU")
@pytest.mark.parametrize("index,value", [
    ((1, slice(2, 5)), 7.5), ("mask", -1.0), ([0, 3], np.full(6, 3.0, np.float32)), (slice(None), 2)])
def test_gpu_tensor_item_assignment(index, value):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    if isinstance(index, str):
        index = a[:, 0] > 5
    t = Tensor(a.copy()).to("GPU")
    t[index] = value
    a[index] = value
    assert t.device == "GPU"
    np.testing.assert_array_equal(t.asnumpy(), a)
