"""The PyNative tape (src/runtime/tape.h, DESIGN.md §1): gradients of code
that runs eagerly -- functions without source, Python features GRAPH_MODE
does not compile -- from the same rules, against PyTorch 1.13 autograd and
against GRAPH_MODE; one compilation per tape structure; views and setitem
recorded; in-place writes checked; no leaks."""
import functools
import gc
import tracemalloc

import numpy as np
import pytest
import torch

import spore
from spore import Tensor, nn, ops
from spore import _C
from spore.ops import operations as P

RNG = np.random.default_rng(7)


def _a(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _close(a, b, tol=1e-5):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.fixture(autouse=True)
def _pynative():
    spore.set_context(mode=spore.PYNATIVE_MODE)
    yield


def _torch_grads(fn, *xs):
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    fn(*ts).backward()
    return [t.grad for t in ts]


# ---- callables without source, and Python GRAPH_MODE does not compile ----

def test_lambda_made_by_exec_has_no_source_but_differentiates():
    ns = {"ops": ops}
    exec("f = lambda x, y: (ops.sin(x) * y + x * x).sum()", ns)
    x, y = _a(3, 4), _a(3, 4)
    gx, gy = spore.grad(ns["f"], (0, 1))(Tensor(x), Tensor(y))
    tx, ty = _torch_grads(lambda a, b: (torch.sin(a) * b + a * a).sum(), x, y)
    _close(gx, tx)
    _close(gy, ty)


def test_partial_and_callable_object():
    def f(x, w, scale):
        return (ops.tanh(x @ w) * scale).sum()

    x, w = _a(2, 3), _a(3, 4)
    g = spore.grad(functools.partial(f, scale=3.0), (0, 1))(Tensor(x), Tensor(w))
    t = _torch_grads(lambda a, b: (torch.tanh(a @ b) * 3.0).sum(), x, w)
    _close(g[0], t[0])
    _close(g[1], t[1])

    class Obj:
        def __init__(self):
            self.k = 2.0

        def __call__(self, x):
            return (ops.exp(x) * self.k).mean()

    gx = spore.grad(Obj())(Tensor(x))
    _close(gx, _torch_grads(lambda a: (torch.exp(a) * 2.0).mean(), x)[0])


def test_try_except_dict_and_control_flow_on_item():
    table = {"a": 1.5, "b": -2.0}

    def f(x):
        acc = {}
        try:
            acc["y"] = x * table["missing"]
        except KeyError:
            acc["y"] = x * table["a"]
        s = acc["y"].sum()
        if s.item() > 0:
            out = s * s
        else:
            out = -s
        for i in range(int(x.shape[0])):
            if x[i].sum().item() > 0:
                out = out + (x[i] * x[i]).sum()
        return out

    x = _a(4, 3)

    def tf(a):
        y = a * 1.5
        s = y.sum()
        out = s * s if s.item() > 0 else -s
        for i in range(a.shape[0]):
            if a[i].sum().item() > 0:
                out = out + (a[i] * a[i]).sum()
        return out
    _close(spore.grad(f)(Tensor(x)), _torch_grads(tf, x)[0])


def test_closure_over_tensors_and_weights_by_identity():
    w = Tensor(_a(3, 3))
    b = Tensor(_a(3))

    def f(x):
        return ops.relu(x @ w + b).sum()

    x = _a(5, 3)
    gx, (gw, gb) = spore.grad(f, 0, weights=(w, b))(Tensor(x))
    tx, tw, tb = _torch_grads(lambda a, ww, bb: torch.relu(a @ ww + bb).sum(), x, w.asnumpy(), b.asnumpy())
    _close(gx, tx)
    _close(gw, tw)
    _close(gb, tb)


def test_one_tensor_at_two_positions_gets_two_gradients():
    x = Tensor(_a(3))
    gx, gy = spore.grad(lambda a, b: (ops.sin(a) * b).sum(), (0, 1))(x, x)
    _close(gx, np.cos(x.asnumpy()) * x.asnumpy())
    _close(gy, np.sin(x.asnumpy()))


# ---- networks, MindSpore's structures, both modes agree ----

class _MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.fc2 = nn.Dense(8, 3)

    def construct(self, x):
        return self.fc2(ops.relu(self.fc1(x)))


def _mlp_loss(net, x, y):
    return ((net(x) - y) ** 2).mean()


def test_weights_of_a_network_against_torch_and_graph_mode():
    spore.set_seed(1)
    net = _MLP()
    x, y = _a(6, 4), _a(6, 3)

    def loss(a, b):
        return _mlp_loss(net, a, b)
    res = {}
    for mode in (spore.PYNATIVE_MODE, spore.GRAPH_MODE):
        spore.set_context(mode=mode)
        res[mode] = spore.value_and_grad(loss, (0, 1), net.trainable_params())(Tensor(x), Tensor(y))
    (lp, (gin_p, gw_p)), (lg, (gin_g, gw_g)) = res[spore.PYNATIVE_MODE], res[spore.GRAPH_MODE]
    _close(lp, lg)
    for a, b in zip(gin_p + gw_p, gin_g + gw_g):
        _close(a, b.asnumpy())
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        tnet[0].weight.copy_(torch.tensor(net.fc1.weight.asnumpy()))
        tnet[0].bias.copy_(torch.tensor(net.fc1.bias.asnumpy()))
        tnet[2].weight.copy_(torch.tensor(net.fc2.weight.asnumpy()))
        tnet[2].bias.copy_(torch.tensor(net.fc2.bias.asnumpy()))
    tl = ((tnet(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
    tl.backward()
    _close(lp, tl)
    for g, p in zip(gw_p, [tnet[0].weight, tnet[0].bias, tnet[2].weight, tnet[2].bias]):
        _close(g, p.grad)


def test_has_aux_and_sens_param():
    x = _a(3, 2)

    def f(a):
        return (a * a).sum(), a * 2, "tag"
    (g, aux) = spore.grad(f, has_aux=True)(Tensor(x))
    _close(g, 2 * x)
    assert aux[1] == "tag"
    _close(aux[0], 2 * x)
    out, g2 = spore.value_and_grad(f, has_aux=True)(Tensor(x))  # the value: the whole output
    _close(out[0], (x * x).sum())
    assert len(out) == 3
    _close(g2, 2 * x)

    sens = _a(3, 2)
    g3 = ops.GradOperation(sens_param=True)(lambda a: ops.sin(a))(Tensor(x), Tensor(sens))
    _close(g3, np.cos(x) * sens)
    g4 = ops.GradOperation(get_all=True)(lambda a, b: (a * b).sum())(Tensor(x), Tensor(sens))
    _close(g4[0], sens)
    _close(g4[1], x)


def test_unused_inputs_and_weights_get_zeros():
    w = spore.Parameter(Tensor(_a(2)), name="unused_w")
    x, y = _a(3), _a(2, 2)
    gx, gy = spore.grad(lambda a, b: (a * 3).sum(), (0, 1))(Tensor(x), Tensor(y))
    _close(gx, np.full(3, 3.0))
    _close(gy, np.zeros((2, 2)))
    gw = spore.grad(lambda a: a.sum(), None, weights=[w])(Tensor(x))  # None: only the weights
    assert len(gw) == 1
    _close(gw[0], np.zeros(2))


def test_int_inputs_and_errors_as_graph_mode():
    x = Tensor(_a(3))
    for mode in (spore.PYNATIVE_MODE, spore.GRAPH_MODE):
        spore.set_context(mode=mode)
        with pytest.raises(TypeError, match="input 1 is an integer"):
            spore.grad(_scaled, (0, 1))(x, 3)
        with pytest.raises(TypeError, match="gradients need a floating-point output"):
            spore.grad(_int_out)(x)
        with pytest.raises(TypeError, match="not a scalar"):
            spore.grad(_vec_out)(x)
    spore.set_context(mode=spore.PYNATIVE_MODE)
    gp = ops.GradOperation(get_all=True)(_scaled)(x, 3)
    spore.set_context(mode=spore.GRAPH_MODE)
    gg = ops.GradOperation(get_all=True)(_scaled)(x, 3)
    _close(gp[0], gg[0].asnumpy())
    assert float(gp[1]) == float(gg[1]) == 0.0


def _scaled(a, k):
    return (a * k).sum()


def _int_out(a):
    return (a > 0).astype(spore.int32).sum()


def _vec_out(a):
    return a * 2


def test_python_float_input_falls_back_to_the_source_values():
    g = spore.grad(_scaled, (0, 1))(Tensor(np.array([1.0, 2.0], np.float32)), 3.0)
    _close(g[0], [3.0, 3.0])
    assert abs(float(g[1]) - 3.0) < 1e-6


# ---- views, setitem, dropout ----

def test_squeeze_expand_dims_slicing_transpose_gradients():
    x = _a(2, 1, 3)

    def f(a):
        s = ops.squeeze(a)                 # (2, 3)
        e = ops.expand_dims(s, 0)          # (1, 2, 3)
        t = s.transpose(1, 0)              # (3, 2)
        return (e[0, :, 1:] * 2).sum() + (t[::2] ** 2).sum() + a[1, 0, 0] * 5 + a[..., None].sum()

    def tf(a):
        s = a.squeeze()
        e = s.unsqueeze(0)
        t = s.transpose(1, 0)
        return (e[0, :, 1:] * 2).sum() + (t[::2] ** 2).sum() + a[1, 0, 0] * 5 + a[..., None].sum()
    for mode in (spore.PYNATIVE_MODE, spore.GRAPH_MODE):
        spore.set_context(mode=mode)
        _close(spore.grad(f)(Tensor(x)), _torch_grads(tf, x)[0])


def test_squeeze_gradient_is_not_zero_through_run_time_J():
    # the view of ops.squeeze is noted as a RESHAPE everywhere (was a zero gradient)
    x = Tensor(_a(3, 1))
    g = spore.grad(lambda a: (ops.squeeze(a, 1) * 2).sum())(x)
    _close(g, np.full((3, 1), 2.0))


def test_setitem_records_gradients_for_both_sides():
    x, v = _a(4, 3), _a(3)

    def f(a, b):
        y = a * 1.0
        y[1] = b * 2
        y[2:, ::2] = 7.0
        y[ops.tensor([0, 3])] = b[0]
        return (y * y).sum()

    def tf(a, b):
        y = a * 1.0
        y[1] = b * 2
        y[2:, ::2] = 7.0
        y[torch.tensor([0, 3])] = b[0]
        return (y * y).sum()
    gx, gv = spore.grad(f, (0, 1))(Tensor(x), Tensor(v))
    tx, tv = _torch_grads(tf, x, v)
    _close(gx, tx)
    _close(gv, tv)


def test_setitem_with_a_mask_and_into_a_constant():
    x = _a(5)

    def f(a):
        z = ops.zeros((5,), spore.float32)
        z[a > 0] = a[0] * 3
        z[0:2] = a[1:3]
        return (z * ops.arange(5).astype(spore.float32)).sum()

    def tf(a):
        z = torch.zeros(5)
        z[a > 0] = a[0] * 3
        z[0:2] = a[1:3]
        return (z * torch.arange(5).float()).sum()
    _close(spore.grad(f)(Tensor(x)), _torch_grads(tf, x)[0])


def test_dropout_mask_is_recorded_not_redrawn():
    spore.set_seed(3)
    x = Tensor(np.ones((64,), np.float32))
    out = {}

    def f(a):
        y = ops.dropout(a, p=0.5)
        out["y"] = y
        return (y * a).sum()
    g = spore.grad(f)(x).asnumpy()
    y = out["y"].asnumpy()
    _close(g, 2 * y)  # d/dx (mask*x/(1-p) * x) = 2 * y at x = 1
    assert 0 < (y != 0).sum() < 64


def test_in_place_write_of_a_needed_tensor_is_an_error_naming_the_op():
    def f(a):
        c = a * 1.0
        y = c * c
        ops.assign(c, ops.zeros_like(c))
        return y.sum()
    with pytest.raises(RuntimeError, match="modified in place by 'assign'"):
        spore.grad(f)(Tensor(_a(3)))

    def ok(a):
        c = a * 2.0
        y = c + 1.0       # add's rule does not read c
        ops.assign(c, ops.zeros_like(c))
        return (y * a).sum()
    x = _a(3)
    _close(spore.grad(ok)(Tensor(x)), 4 * x + 1)


def test_nested_grad_falls_back_and_is_right():
    def inner(a):
        return (a * a * a).sum()

    def outer(a):
        return spore.grad(inner)(a).sum()
    x = _a(4)
    _close(spore.grad(outer)(Tensor(x)), 6 * x)


# ---- training: one compilation, PyNative matches GRAPH_MODE ----

class _LeNetish(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, pad_mode="valid")
        self.pool = nn.MaxPool2d(2, 2)
        self.flat = nn.Flatten()
        self.fc = nn.Dense(4 * 3 * 3, 10)

    def construct(self, x):
        return self.fc(self.flat(self.pool(ops.relu(self.conv(x)))))


def _train(mode, steps=5):
    spore.set_context(mode=mode)
    spore.set_seed(11)
    net = _LeNetish()
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True,
                                                                                   reduction="mean")), opt)
    step.set_train()
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(steps):
        x = Tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
        y = Tensor(rng.integers(0, 10, 8).astype(np.int32))
        losses.append(step(x, y).asnumpy().item())
    return losses, [p.asnumpy() for p in net.trainable_params()]


def test_train_one_step_cell_pynative_matches_graph_mode_and_compiles_once():
    _C.tape_cache_clear()
    c0, h0 = _C.tape_stats()
    lp, wp = _train(spore.PYNATIVE_MODE)
    c1, h1 = _C.tape_stats()
    assert c1 - c0 == 1 and h1 - h0 == 4  # 5 steps: one backward compiled, then replayed
    lg, wg = _train(spore.GRAPH_MODE)
    np.testing.assert_allclose(lp, lg, rtol=1e-5, atol=1e-5)
    assert len(set(lp)) == 5
    for a, b in zip(wp, wg):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_no_leaks_over_2000_taped_steps():
    net = _MLP()
    opt = nn.SGD(net.trainable_params(), learning_rate=0.01)
    grad_fn = spore.value_and_grad(lambda a, b: _mlp_loss(net, a, b), None, opt.parameters)
    x, y = Tensor(_a(6, 4)), Tensor(_a(6, 3))

    def step():
        loss, g = grad_fn(x, y)  # grad_position None: the weights' gradients only
        opt(g)
        return loss.item()
    for _ in range(3):
        step()
    gc.collect()
    tracemalloc.start()
    py0 = tracemalloc.get_traced_memory()[0]
    sp0 = _C.cpu_live_bytes()
    c0 = _C.tape_stats()[0]
    for _ in range(2000):
        step()
    gc.collect()
    py1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert _C.tape_stats()[0] == c0  # no compilation after the first steps
    assert _C.cpu_live_bytes() - sp0 == 0
    assert py1 - py0 < 64 * 1024
