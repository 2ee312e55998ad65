"""spore.ops.operations (P): the primitive classes MindSpore models use,
each against a numpy reference, called directly (PYNATIVE_MODE) and from a
Cell's construct compiled in GRAPH_MODE (the `mode` fixture)."""
import numpy as np
import pytest

import spore
from spore import Parameter, Tensor, nn
from spore.ops import operations as P

RNG = np.random.default_rng(7)


def rnd(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


class _Call1(nn.Cell):
    def __init__(self, op, k):
        super().__init__()
        self.op, self.k = op, k

    def construct(self, a):
        return self.op(a, *self.k)


class _Call2(nn.Cell):
    def __init__(self, op, k):
        super().__init__()
        self.op, self.k = op, k

    def construct(self, a, b):
        return self.op(a, b, *self.k)


class _Call3(nn.Cell):
    def __init__(self, op, k):
        super().__init__()
        self.op, self.k = op, k

    def construct(self, a, b, c):
        return self.op(a, b, c, *self.k)


class _Call4(nn.Cell):
    def __init__(self, op, k):
        super().__init__()
        self.op, self.k = op, k

    def construct(self, a, b, c, d):
        return self.op(a, b, c, d, *self.k)


class _Call5(nn.Cell):
    def __init__(self, op, k):
        super().__init__()
        self.op, self.k = op, k

    def construct(self, a, b, c, d, e):
        return self.op(a, b, c, d, e, *self.k)


_CALLS = {1: _Call1, 2: _Call2, 3: _Call3, 4: _Call4, 5: _Call5}


def run(op, tensors, consts=()):
    """op(*tensors, *consts): directly in PYNATIVE_MODE, from a Cell's construct
    in GRAPH_MODE; numpy results (tuples stay tuples)."""
    args = [Tensor(t) if isinstance(t, np.ndarray) else t for t in tensors]
    if spore.get_context("mode") == spore.GRAPH_MODE:
        out = _CALLS[len(args)](op, tuple(consts))(*args)
    else:
        out = op(*args, *consts)
    if isinstance(out, (tuple, list)):
        return tuple(o.asnumpy() if isinstance(o, Tensor) else o for o in out)
    return out.asnumpy() if isinstance(out, Tensor) else out


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


def test_arg_max_min_with_value(mode):
    x = rnd(3, 4)
    idx, val = run(P.ArgMaxWithValue(), [x])
    assert idx.dtype in (np.int64, np.int32)
    np.testing.assert_array_equal(idx, x.argmax(0))
    close(val, x.max(0))
    idx, val = run(P.ArgMinWithValue(axis=1, keep_dims=True), [x])
    np.testing.assert_array_equal(idx, x.argmin(1)[:, None])
    close(val, x.min(1, keepdims=True))


def test_bias_add(mode):
    x, b = rnd(2, 3, 4, 5), rnd(3)
    close(run(P.BiasAdd(), [x, b]), x + b[None, :, None, None])
    x2 = rnd(4, 3)
    close(run(P.BiasAdd(), [x2, b]), x2 + b)


def test_softmax_cross_entropy_with_logits(mode):
    logits = rnd(4, 5)
    labels = np.eye(5, dtype=np.float32)[[0, 3, 1, 4]] * 0.9 + 0.02
    loss, grad = run(P.SoftmaxCrossEntropyWithLogits(), [logits, labels])
    e = np.exp(logits - logits.max(1, keepdims=True))
    sm = e / e.sum(1, keepdims=True)
    close(loss, -(labels * np.log(sm)).sum(1))
    close(grad, sm - labels)


def test_sparse_softmax_cross_entropy_with_logits(mode):
    logits, labels = rnd(6, 4), np.array([0, 3, 1, 2, 2, 0], np.int32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    ref = -np.log(e[np.arange(6), labels] / e.sum(1)).mean()
    close(run(P.SparseSoftmaxCrossEntropyWithLogits(), [logits, labels]), ref)
    with pytest.raises(NotImplementedError):
        P.SparseSoftmaxCrossEntropyWithLogits(is_grad=True)


def test_split(mode):
    x = rnd(4, 6)
    parts = run(P.Split(axis=1, output_num=3), [x])
    assert len(parts) == 3
    for p, r in zip(parts, np.split(x, 3, axis=1)):
        close(p, r)
    parts = run(P.Split(), [x])
    assert len(parts) == 1
    close(parts[0], x)


def test_fill_ones_zeros_dtype(mode):
    np.testing.assert_array_equal(P.Fill()(spore.float32, (2, 3), 2.5).asnumpy(), np.full((2, 3), 2.5))
    z = P.Zeros()((2, 2), spore.int32)
    assert z.dtype == spore.int32 and z.asnumpy().tolist() == [[0, 0], [0, 0]]
    o = P.Ones()((3,), spore.float32)
    assert o.asnumpy().tolist() == [1.0, 1.0, 1.0]
    assert run(P.DType(), [rnd(2)]) == spore.float32


@pytest.mark.parametrize("masks,begin,end,strides", [
    ({}, (0, 1), (2, 3), (1, 1)),
    ({}, (1, 0, 0), (3, 4, 5), (1, 2, 2)),
    ({}, (3, 4), (0, 0), (-1, -2)),
    ({"begin_mask": 1}, (2, 1), (3, 3), (1, 1)),
    ({"end_mask": 2}, (0, 1), (2, 2), (1, 1)),
    ({"shrink_axis_mask": 1}, (1, 0), (2, 3), (1, 2)),
    ({"shrink_axis_mask": 2, "begin_mask": 1}, (5, -1), (2, 0), (1, 1)),
])
def test_strided_slice(mode, masks, begin, end, strides):
    x = rnd(4, 5, 3)
    sl = []
    for i in range(len(begin)):
        if masks.get("shrink_axis_mask", 0) >> i & 1:
            sl.append(begin[i])
        else:
            b = None if masks.get("begin_mask", 0) >> i & 1 else begin[i]
            e = None if masks.get("end_mask", 0) >> i & 1 else end[i]
            sl.append(slice(b, e, strides[i]))
    ref = x[tuple(sl)]
    out = run(P.StridedSlice(**masks), [x], (begin, end, strides))
    assert out.shape == ref.shape
    close(out, ref)


def test_strided_slice_unsupported_masks():
    with pytest.raises(NotImplementedError):
        P.StridedSlice(ellipsis_mask=1)
    with pytest.raises(NotImplementedError):
        P.StridedSlice(new_axis_mask=2)


def test_slice(mode):
    x = rnd(4, 5)
    close(run(P.Slice(), [x], ((1, 2), (2, -1))), x[1:3, 2:])


def test_layer_norm(mode):
    x, g, b = rnd(2, 3, 4), rnd(3, 4), rnd(3, 4)
    y, mean, var = run(P.LayerNorm(begin_norm_axis=1, begin_params_axis=1, epsilon=1e-5), [x, g, b])
    m = x.mean((1, 2), keepdims=True)
    v = x.var((1, 2), keepdims=True)
    close(y, (x - m) / np.sqrt(v + 1e-5) * g + b, 1e-4)
    close(mean, m)
    close(var, v, 1e-4)
    x2, g2, b2 = rnd(3, 6), rnd(6), rnd(6)
    y2, _, _ = run(P.LayerNorm(-1, -1), [x2, g2, b2])
    m2, v2 = x2.mean(-1, keepdims=True), x2.var(-1, keepdims=True)
    close(y2, (x2 - m2) / np.sqrt(v2 + 1e-7) * g2 + b2, 1e-4)


def test_batch_norm_inference(mode):
    x = rnd(4, 3, 2, 2)
    scale, bias, mean, var = rnd(3), rnd(3), rnd(3), np.abs(rnd(3)) + 0.5
    y = run(P.BatchNorm(is_training=False, epsilon=1e-5), [x, scale, bias, mean, var])
    assert len(y) == 5
    r = lambda a: a[None, :, None, None]  # noqa: E731
    close(y[0], (x - r(mean)) / np.sqrt(r(var) + 1e-5) * r(scale) + r(bias), 1e-4)


def test_batch_norm_training_updates_running_stats():
    x = rnd(8, 3, 2, 2)
    scale, bias = Tensor(np.ones(3, np.float32)), Tensor(np.zeros(3, np.float32))
    rm, rv = Parameter(Tensor(np.zeros(3, np.float32)), "rm"), Parameter(Tensor(np.ones(3, np.float32)), "rv")
    y, bm, bv, _, _ = P.BatchNorm(is_training=True, momentum=0.1)(Tensor(x), scale, bias, rm, rv)
    m, v = x.mean((0, 2, 3)), x.var((0, 2, 3))
    close(bm.asnumpy(), m)
    close(bv.asnumpy(), v, 1e-4)
    close(y.asnumpy(), (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-5), 1e-4)
    close(rm.asnumpy(), 0.1 * m)
    n = x.size / 3
    close(rv.asnumpy(), 0.9 + 0.1 * v * n / (n - 1), 1e-4)


def test_apply_momentum_in_place():
    var, acc = Parameter(Tensor(rnd(5)), "v"), Parameter(Tensor(rnd(5)), "a")
    v0, a0, g = var.asnumpy().copy(), acc.asnumpy().copy(), rnd(5)
    P.ApplyMomentum()(var, acc, 0.1, Tensor(g), 0.9)
    a1 = a0 * 0.9 + g
    close(acc.asnumpy(), a1)
    close(var.asnumpy(), v0 - 0.1 * a1)
    var2, acc2 = Parameter(Tensor(v0.copy()), "v2"), Parameter(Tensor(a0.copy()), "a2")
    P.ApplyMomentum(use_nesterov=True)(var2, acc2, 0.1, Tensor(g), 0.9)
    close(var2.asnumpy(), v0 - (g * 0.1 + a1 * 0.9 * 0.1))


def test_adam_in_place():
    var, m, v = Parameter(Tensor(rnd(6)), "var"), Parameter(Tensor(rnd(6)), "m"), \
        Parameter(Tensor(np.abs(rnd(6))), "v")
    var0, m0, v0, g = var.asnumpy().copy(), m.asnumpy().copy(), v.asnumpy().copy(), rnd(6)
    b1, b2, lr, eps, b1p, b2p = 0.9, 0.999, 0.01, 1e-8, 0.9 ** 3, 0.999 ** 3
    P.Adam()(var, m, v, b1p, b2p, lr, b1, b2, eps, Tensor(g))
    m1 = m0 + (g - m0) * (1 - b1)
    v1 = v0 + (g * g - v0) * (1 - b2)
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    close(m.asnumpy(), m1)
    close(v.asnumpy(), v1)
    close(var.asnumpy(), var0 - lr_t * m1 / (np.sqrt(v1) + eps), 1e-4)


def test_apply_momentum_in_a_graph_mode_step():
    class Step(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.ones(3, np.float32)), "w")
            self.acc = Parameter(Tensor(np.zeros(3, np.float32)), "acc")
            self.opt = P.ApplyMomentum()

        def construct(self, g):
            return self.opt(self.w, self.acc, 0.5, g, 0.9)

    spore.set_context(mode=spore.GRAPH_MODE)
    net = Step()
    g = np.array([1.0, 2.0, 3.0], np.float32)
    net(Tensor(g))
    net(Tensor(g))
    a1 = g
    a2 = a1 * 0.9 + g
    close(net.acc.asnumpy(), a2)
    close(net.w.asnumpy(), 1 - 0.5 * a1 - 0.5 * a2)


def test_conv2d(mode):
    torch = pytest.importorskip("torch")
    x, w = rnd(2, 3, 7, 7), rnd(4, 3, 3, 3)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    close(run(P.Conv2D(4, 3), [x, w]), torch.nn.functional.conv2d(tx, tw).numpy(), 1e-4)
    close(run(P.Conv2D(4, 3, pad_mode="pad", pad=1, stride=2), [x, w]),
          torch.nn.functional.conv2d(tx, tw, stride=2, padding=1).numpy(), 1e-4)
    out = run(P.Conv2D(4, 3, pad_mode="same"), [x, w])
    close(out, torch.nn.functional.conv2d(tx, tw, padding=1).numpy(), 1e-4)
    wg = rnd(4, 1, 3, 3)
    close(run(P.Conv2D(4, 3, group=2, dilation=2, stride=(1, 1, 1, 1)), [x[:1, :2].copy(), wg]),
          torch.nn.functional.conv2d(torch.from_numpy(x[:1, :2]), torch.from_numpy(wg), groups=2, dilation=2).numpy(),
          1e-4)
    with pytest.raises(ValueError):
        P.Conv2D(4, 3, pad_mode="same", pad=1)


def test_pools(mode):
    torch = pytest.importorskip("torch")
    x = rnd(2, 3, 8, 8)
    tx = torch.from_numpy(x)
    close(run(P.MaxPool(kernel_size=2, strides=2), [x]), torch.nn.functional.max_pool2d(tx, 2, 2).numpy())
    close(run(P.AvgPool(kernel_size=3, strides=1), [x]), torch.nn.functional.avg_pool2d(tx, 3, 1).numpy(), 1e-5)
    # "same": ceil(8/3) = 3 outputs per axis, padded cells never win / are not averaged
    xs = rnd(1, 1, 8, 8)
    out = run(P.MaxPool(kernel_size=3, strides=3, pad_mode="same"), [xs])
    assert out.shape == (1, 1, 3, 3)
    padded = np.pad(xs, ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=-np.inf)
    ref = padded.reshape(1, 1, 3, 3, 3, 3).max(axis=(3, 5))
    close(out, ref)
    out = run(P.AvgPool(kernel_size=3, strides=3, pad_mode="SAME"), [xs])
    cnt = np.pad(np.ones_like(xs), ((0, 0), (0, 0), (0, 1), (0, 1))).reshape(1, 1, 3, 3, 3, 3).sum(axis=(3, 5))
    close(out, np.pad(xs, ((0, 0), (0, 0), (0, 1), (0, 1))).reshape(1, 1, 3, 3, 3, 3).sum(axis=(3, 5)) / cnt)


def test_reduce_all_any(mode):
    x = rnd(3, 4) > 0
    np.testing.assert_array_equal(run(P.ReduceAll(), [x], (1,)), x.all(1))
    np.testing.assert_array_equal(run(P.ReduceAny(keep_dims=True), [x], (0,)), x.any(0, keepdims=True))
    assert bool(run(P.ReduceAny(), [x])) == bool(x.any())


def test_elementwise_composites(mode):
    x, y = rnd(3, 4) * 4, rnd(3, 4)
    close(run(P.ReLU6(), [x]), np.clip(x, 0, 6))
    close(run(P.HSwish(), [x]), x * np.clip(x + 3, 0, 6) / 6)
    close(run(P.HSigmoid(), [x]), np.clip(x + 3, 0, 6) / 6)
    close(run(P.Mish(), [x]), x * np.tanh(np.log1p(np.exp(x))), 1e-4)
    close(run(P.Softplus(), [x]), np.log1p(np.exp(x)), 1e-4)
    close(run(P.Expm1(), [y]), np.expm1(y))
    close(run(P.SquaredDifference(), [x, y]), (x - y) ** 2, 1e-4)
    close(run(P.AddN(), [(Tensor(x), Tensor(y), Tensor(x))]), x + y + x)
    close(run(P.L2Normalize(axis=1), [y]), y / np.sqrt(np.maximum((y * y).sum(1, keepdims=True), 1e-4)))
    close(run(P.Depend(), [x, y]), x)


def test_shape_primitives(mode):
    x = rnd(2, 3, 4)
    close(run(P.Flatten(), [x]), x.reshape(2, 12))
    idx = np.array([[0, 2], [1, 0]], np.int64)
    m = rnd(2, 3)
    close(run(P.GatherD(), [m], (1, Tensor(idx))), np.take_along_axis(m, idx, 1))
    v, i = run(P.TopK(), [rnd(3, 5) * 0 + np.arange(15, dtype=np.float32).reshape(3, 5)], (2,))
    np.testing.assert_array_equal(i, [[4, 3], [4, 3], [4, 3]])
    close(v, [[4, 3], [9, 8], [14, 13]])
    s = rnd(4)
    v, i = run(P.Sort(descending=True), [s])
    close(v, np.sort(s)[::-1])
    np.testing.assert_array_equal(i, np.argsort(-s))
    close(run(P.CumSum(), [m], (1,)), np.cumsum(m, 1))
    with pytest.raises(NotImplementedError):
        P.CumSum(exclusive=True)


def test_assign_primitive(mode):
    p = Parameter(Tensor(np.zeros(3, np.float32)), "p")
    P.Assign()(p, Tensor(np.array([1.0, 2.0, 3.0], np.float32)))
    assert p.asnumpy().tolist() == [1.0, 2.0, 3.0]


def test_shard_and_attrs_are_kept():
    op = P.Conv2D(8, 3, pad_mode="same").shard(((1, 1, 1, 1), (1, 1, 1, 1)))
    assert op.strategy == ((1, 1, 1, 1), (1, 1, 1, 1))
    assert op.attrs["out_channel"] == 8 and op.attrs["pad_mode"] == "same"
    assert P.ArgMaxWithValue(axis=1).attrs["axis"] == 1


def test_primitive_base_without_and_with_a_value():
    p = spore.ops.Primitive("Custom")
    with pytest.raises(NotImplementedError, match="Custom has no Spore implementation"):
        p(Tensor(np.ones(2, np.float32)))
    p._sp_value = spore.ops.add  # set directly, not through _bind
    assert p(Tensor(np.ones(2, np.float32)), 1.0).asnumpy().tolist() == [2.0, 2.0]


def test_ops_functions_are_c_callables_with_function_names():
    ops = spore.ops
    add = ops.add
    assert add.__name__ == "add" and add.__module__ == "spore.ops" and "ops.add" in add.__doc__
    assert add._sp_value is add and isinstance(add, spore._C.Value)
    x = Tensor(np.arange(3, dtype=np.float32))
    assert add(x, other=x).asnumpy().tolist() == [0.0, 2.0, 4.0]
    assert ops.sum(x, keepdim=True).asnumpy().tolist() == [3.0]
    with pytest.raises(TypeError, match=r"ops.add\(\) missing required argument 'other'"):
        add(x)
    with pytest.raises(TypeError, match=r"ops.add\(\) takes 2 positional arguments but 3 were given"):
        add(x, x, x)
    with pytest.raises(TypeError, match=r"ops.add\(\) got an unexpected keyword argument 'bogus'"):
        add(x, x, bogus=1)
    with pytest.raises(TypeError, match=r"ops.add\(\) got multiple values for argument 'input'"):
        add(x, input=x, other=x)
    with pytest.raises(TypeError, match=r"ops.sum\(\) argument 'dtype' must be a dtype"):
        ops.sum(x, dtype=3)

    class Holder:  # like a builtin function, an ops function does not bind to an instance
        f = ops.relu
    assert Holder().f(Tensor([-1.0, 2.0])).asnumpy().tolist() == [0.0, 2.0]


def test_api_method_binds_like_a_method():
    m = spore._C.value("api", "Tensor.sum")
    assert m.__qualname__ == "Tensor.sum"

    class T(Tensor):
        total = m
    t = T(np.arange(4, dtype=np.float32))
    assert t.total().item() == 6.0 and T.total(t).item() == 6.0
    assert t.total(keepdims=True).asnumpy().tolist() == [6.0]
