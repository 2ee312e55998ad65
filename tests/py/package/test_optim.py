"""spore.nn optimizers against torch.optim (PyTorch 1.13, CPU): ten steps on
identical float32 parameters with the same fixed sequence of gradients,
in both modes (GRAPH_MODE compiles each optimizer's construct); weight
decay, Nesterov, dampening, loss scale, parameter groups, dynamic
learning rates (lists and schedules), the state Parameters and the step
counter; and ops.assign on a Parameter."""
import math

import numpy as np
import pytest
import torch

import spore
from spore import Tensor, Parameter, nn, ops

STEPS = 10
SHAPES = [(3, 4), (4,), ()]


def rng(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


def data(*key, shapes=SHAPES):
    r = rng(*key)
    params = [r.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[r.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(STEPS)]
    return params, grads


def run_spore(make, params, grads, names=None):
    ps = [Parameter(Tensor(np.array(p, np.float32)), name=(names[i] if names else f"w{i}")) for i, p in enumerate(params)]
    opt = make(ps)
    for gs in grads:
        opt(tuple(Tensor(np.asarray(g, np.float32)) for g in gs))
    return [p.asnumpy() for p in ps], opt


def run_torch(make, params, grads, before_step=None):
    ts = [torch.tensor(np.array(p, np.float32), requires_grad=True) for p in params]
    opt = make(ts)
    for k, gs in enumerate(grads):
        for t, g in zip(ts, gs):
            t.grad = torch.tensor(np.asarray(g, np.float32))
        if before_step:
            before_step(opt, k)
        opt.step()
    return [t.detach().numpy() for t in ts]


def same(got, want, rtol=2e-5, atol=2e-6):
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


SGD_CASES = [
    (dict(), dict()),
    (dict(momentum=0.9), dict(momentum=0.9)),
    (dict(momentum=0.9, weight_decay=0.01), dict(momentum=0.9, weight_decay=0.01)),
    (dict(momentum=0.8, nesterov=True, weight_decay=0.05), dict(momentum=0.8, nesterov=True, weight_decay=0.05)),
    (dict(momentum=0.7, dampening=0.3), dict(momentum=0.7, dampening=0.3)),
    (dict(momentum=0.7, dampening=0.5, weight_decay=0.1), dict(momentum=0.7, dampening=0.5, weight_decay=0.1)),
]


@pytest.mark.parametrize("case", range(len(SGD_CASES)))
def test_sgd(mode, case):
    kw, tkw = SGD_CASES[case]
    params, grads = data("sgd", case)
    got, opt = run_spore(lambda ps: nn.SGD(ps, learning_rate=0.05, **kw), params, grads)
    want = run_torch(lambda ts: torch.optim.SGD(ts, lr=0.05, **tkw), params, grads)
    same(got, want)
    assert opt.global_step.asnumpy().tolist() == [STEPS]


def test_sgd_loss_scale(mode):
    params, grads = data("sgd-ls")
    got, _ = run_spore(lambda ps: nn.SGD(ps, 0.1, momentum=0.9, weight_decay=0.02, loss_scale=128.0),
                       params, [[g * 128 for g in gs] for gs in grads])
    want = run_torch(lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9, weight_decay=0.02), params, grads)
    same(got, want)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.03])
def test_momentum(mode, nesterov, wd):
    """MindSpore's Momentum: v = m*v + g, p -= lr*v (nesterov: lr*(g + m*v))
    is torch's SGD with momentum and no dampening."""
    params, grads = data("mom", nesterov, wd)
    got, opt = run_spore(lambda ps: nn.Momentum(ps, 0.03, 0.9, weight_decay=wd, use_nesterov=nesterov),
                         params, grads)
    want = run_torch(lambda ts: torch.optim.SGD(ts, lr=0.03, momentum=0.9, nesterov=nesterov, weight_decay=wd),
                     params, grads)
    same(got, want)
    assert [p.name for p in opt.moments] == ["moments.w0", "moments.w1", "moments.w2"]
    assert all(not p.requires_grad for p in opt.moments)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam(mode, wd):
    params, grads = data("adam", wd)
    got, opt = run_spore(lambda ps: nn.Adam(ps, learning_rate=0.01, weight_decay=wd), params, grads)
    want = run_torch(lambda ts: torch.optim.Adam(ts, lr=0.01, weight_decay=wd), params, grads)
    same(got, want)
    assert opt.moment1[0].name == "moment1.w0" and opt.moment2[2].name == "moment2.w2"
    # torch's moments are the same
    assert opt.global_step.asnumpy().tolist() == [STEPS]


def _adam_nesterov_ref(params, grads, lr, b1, b2, eps, wd):
    """MindSpore's ApplyAdam with use_nesterov, in torch float64."""
    ps = [torch.tensor(p, dtype=torch.float64) for p in params]
    ms = [torch.zeros_like(p) for p in ps]
    vs = [torch.zeros_like(p) for p in ps]
    for t, gs in enumerate(grads, 1):
        for p, m, v, g in zip(ps, ms, vs, gs):
            g = torch.tensor(g, dtype=torch.float64) + wd * p
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            p.sub_(lr_t * (b1 * m + (1 - b1) * g) / (v.sqrt() + eps))
    return [p.numpy() for p in ps]


def test_adam_nesterov(mode):
    params, grads = data("adam-nest")
    got, _ = run_spore(lambda ps: nn.Adam(ps, 0.01, use_nesterov=True, weight_decay=0.01), params, grads)
    same(got, _adam_nesterov_ref(params, grads, 0.01, 0.9, 0.999, 1e-8, 0.01), rtol=1e-4, atol=1e-5)


def _adamw_ms_ref(params, grads, lr, b1, b2, eps, wd):
    """MindSpore's AdamWeightDecay (no bias correction), in torch float64."""
    ps = [torch.tensor(p, dtype=torch.float64) for p in params]
    ms = [torch.zeros_like(p) for p in ps]
    vs = [torch.zeros_like(p) for p in ps]
    for gs in grads:
        for p, m, v, g in zip(ps, ms, vs, gs):
            g = torch.tensor(g, dtype=torch.float64)
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            p.sub_(lr * (m / (v.sqrt() + eps) + wd * p))
    return [p.numpy() for p in ps]


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_weight_decay(mode, wd):
    params, grads = data("adamw", wd)
    got, opt = run_spore(lambda ps: nn.AdamWeightDecay(ps, learning_rate=0.01, weight_decay=wd), params, grads)
    same(got, _adamw_ms_ref(params, grads, 0.01, 0.9, 0.999, 1e-6, wd), rtol=1e-4, atol=1e-5)
    assert opt.moments1[1].name == "adam_m.w1" and opt.moments2[1].name == "adam_v.w1"


def test_decay_filter_skips_beta_and_gamma(mode):
    """Without groups, weight decay skips Parameters named like norm
    scales and shifts (MindSpore)."""
    params, grads = data("filter", shapes=[(3,), (3,), (2, 3)])
    names = ["bn.gamma", "bn.beta", "fc.weight"]
    got, _ = run_spore(lambda ps: nn.Momentum(ps, 0.1, 0.9, weight_decay=0.5), params, grads, names)
    want = run_torch(lambda ts: torch.optim.SGD([{"params": ts[:2], "weight_decay": 0.0},
                                                 {"params": ts[2:], "weight_decay": 0.5}], lr=0.1, momentum=0.9),
                     params, grads)
    same(got, want)


def test_groups(mode):
    params, grads = data("groups")
    lrs = [0.01 * (k + 1) for k in range(STEPS)]

    def make(ps):
        return nn.SGD([{"params": ps[:1], "lr": 0.2, "weight_decay": 0.1},
                       {"params": ps[1:], "lr": lrs}], learning_rate=0.05, momentum=0.9)
    got, opt = run_spore(make, params, grads)

    def sched(opt_t, k):
        opt_t.param_groups[1]["lr"] = lrs[k]
    want = run_torch(lambda ts: torch.optim.SGD([{"params": ts[:1], "lr": 0.2, "weight_decay": 0.1},
                                                 {"params": ts[1:], "lr": lrs[0]}], lr=0.05, momentum=0.9),
                     params, grads, sched)
    same(got, want)
    assert opt.is_group


def test_dynamic_lr_list_runs_out_on_the_last_value(mode):
    params, grads = data("dyn")
    lrs = nn.piecewise_constant_lr([3, 6], [0.1, 0.02])  # 6 entries for 10 steps
    got, _ = run_spore(lambda ps: nn.SGD(ps, lrs), params, grads)

    def sched(opt_t, k):
        opt_t.param_groups[0]["lr"] = lrs[min(k, len(lrs) - 1)]
    want = run_torch(lambda ts: torch.optim.SGD(ts, lr=0.1), params, grads, sched)
    same(got, want)


@pytest.mark.parametrize("which", ["cosine", "warmup", "exp"])
def test_schedule_as_learning_rate(mode, which):
    params, grads = data("sched", which)
    cells = {"cosine": (lambda: nn.CosineDecayLR(0.001, 0.1, 6), lambda s: 0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * min(s, 6) / 6))),
             "warmup": (lambda: nn.WarmUpLR(0.1, 4), lambda s: 0.1 * min(s, 4) / 4),
             "exp": (lambda: nn.ExponentialDecayLR(0.1, 0.5, 3, True), lambda s: 0.1 * 0.5 ** (s // 3))}
    make_cell, f = cells[which]
    got, _ = run_spore(lambda ps: nn.Adam(ps, make_cell()), params, grads)

    def sched(opt_t, k):
        opt_t.param_groups[0]["lr"] = f(k)
    want = run_torch(lambda ts: torch.optim.Adam(ts, lr=f(0)), params, grads, sched)
    same(got, want, rtol=1e-4, atol=1e-5)


def test_get_lr_and_learning_rate_parameter(mode):
    ps = [Parameter(Tensor(np.ones((2,), np.float32)), name="w")]
    opt = nn.SGD(ps, learning_rate=0.25)
    assert isinstance(opt.learning_rate, Parameter) and opt.learning_rate.name == "learning_rate"
    assert float(opt.get_lr().asnumpy()) == 0.25
    assert opt.parameters[0] is ps[0]
    # the rate lives in a Parameter: changing it in place changes the next step
    ops.assign(opt.learning_rate, 0.5)
    opt((Tensor(np.ones((2,), np.float32)),))
    np.testing.assert_allclose(ps[0].asnumpy(), [0.5, 0.5])


def test_state_in_parameters_and_names():
    ps = [Parameter(Tensor(np.ones((2,), np.float32)), name="fc.weight")]
    opt = nn.Adam(ps)
    names = sorted(p.name for _, p in opt.parameters_and_names())
    assert names == ["fc.weight", "global_step", "learning_rate", "moment1.fc.weight", "moment2.fc.weight"]
    # wrapping the optimizer in another Cell keeps MindSpore's names

    class Wrap(nn.Cell):
        def __init__(self, o):
            super().__init__()
            self.optimizer = o
    Wrap(opt)
    assert sorted(p.name for p in opt.moment1 + opt.moment2) == ["moment1.fc.weight", "moment2.fc.weight"]
    assert opt.global_step.name == "global_step"


def test_errors():
    p = [Parameter(Tensor(np.ones(2, np.float32)), name="w")]
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        nn.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="beta1 and beta2"):
        nn.Adam(p, beta1=1.0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        nn.Momentum(p, 0.1, 0.9, weight_decay=-1.0)
    with pytest.raises(TypeError, match="learning_rate"):
        nn.SGD(p, learning_rate="fast")
    with pytest.raises(ValueError, match="empty"):
        nn.SGD([], 0.1)
    with pytest.raises(TypeError, match="Parameters"):
        nn.SGD([Tensor(np.ones(2, np.float32))], 0.1)
    with pytest.raises(ValueError, match="given twice"):
        nn.SGD(p + p, 0.1)


# ---- ops.assign ----

def test_assign_updates_the_parameter_everyone_holds(mode):
    w = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="w")

    class Holder(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = w

        def construct(self, x):
            return self.w + x
    h = Holder()
    assert ops.assign(w, Tensor(np.arange(6, dtype=np.float64).reshape(2, 3))) is None
    np.testing.assert_array_equal(w.asnumpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(h(Tensor(np.ones((2, 3), np.float32))).asnumpy(), np.arange(6).reshape(2, 3) + 1)
    ops.assign(w, 7)  # a scalar broadcasts, in the variable's dtype
    assert w.dtype == spore.float32 and (w.asnumpy() == 7).all()
    with pytest.raises(Exception, match="cannot be assigned"):
        ops.assign(w, Tensor(np.ones((2,), np.float32)))
    ops.assign(w, Tensor(np.array([1, 2, 3], np.int64)))  # a row broadcasts over the rows
    np.testing.assert_array_equal(w.asnumpy(), [[1, 2, 3], [1, 2, 3]])


def test_assign_inside_a_compiled_cell():
    spore.set_context(mode=spore.GRAPH_MODE)
    counter = Parameter(Tensor(np.zeros((1,), np.int32)), name="counter", requires_grad=False)

    class Count(nn.Cell):
        def __init__(self):
            super().__init__()
            self.counter = counter

        def construct(self, x):
            ops.assign(self.counter, self.counter + 1)
            return x * 2
    c = Count()
    for _ in range(3):
        c(Tensor(np.ones(2, np.float32)))
    assert counter.asnumpy().tolist() == [3]


def test_training_steps_match_torch(mode):
    """Weight gradients (spore.value_and_grad over the optimizer's
    parameters) and Momentum updates of a small classifier, five steps
    against torch with the same weights and data."""
    r = rng("train")
    w0 = r.standard_normal((3, 4)).astype(np.float32) * 0.5
    b0 = np.zeros(3, np.float32)
    x = r.standard_normal((8, 4)).astype(np.float32)
    y = r.integers(0, 3, 8).astype(np.int32)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(w0.copy()), name="w")
            self.b = Parameter(Tensor(b0.copy()), name="b")
            self.loss = nn.CrossEntropyLoss()

        def construct(self, x, y):
            return self.loss(ops.matmul(x, ops.transpose(self.w, (1, 0))) + self.b, y)
    net = Net()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9, weight_decay=0.01)
    step = spore.value_and_grad(net, None, opt.parameters)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    tb = torch.tensor(b0.copy(), requires_grad=True)
    topt = torch.optim.SGD([tw, tb], lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(5):
        loss, grads = step(Tensor(x), Tensor(y))
        opt(grads)
        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(torch.tensor(x) @ tw.T + tb, torch.tensor(y).long())
        tl.backward()
        topt.step()
        assert abs(float(loss.asnumpy()) - tl.item()) < 1e-5
    np.testing.assert_allclose(net.w.asnumpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.b.asnumpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)
