"""spore.nn learning-rate schedules (Cells, both modes) and dynamic_lr list
builders: MindSpore's documented examples, the formulas, and PyTorch's
schedulers where one computes the same thing."""
import math

import numpy as np
import pytest
import torch

from spore import Tensor, nn


# ---- list builders: the examples of MindSpore's documentation ----

def test_piecewise_constant_lr():
    assert nn.piecewise_constant_lr([2, 5, 10], [0.1, 0.05, 0.01]) == \
        [0.1, 0.1, 0.05, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01]
    with pytest.raises(ValueError, match="increase"):
        nn.piecewise_constant_lr([3, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="2 milestones but 1"):
        nn.piecewise_constant_lr([3, 4], [0.1])


def test_decay_lists():
    np.testing.assert_allclose(nn.exponential_decay_lr(0.1, 0.9, 6, 2, 1),
                               [0.1, 0.1, 0.09, 0.09, 0.081, 0.081], rtol=1e-12)
    np.testing.assert_allclose(nn.exponential_decay_lr(0.1, 0.9, 6, 1, 2, is_stair=True),
                               [0.1, 0.1, 0.09, 0.09, 0.081, 0.081], rtol=1e-12)
    np.testing.assert_allclose(nn.natural_exp_decay_lr(0.1, 0.9, 6, 2, 2, True),
                               [0.1, 0.1, 0.1, 0.1, 0.1 * math.exp(-0.9), 0.1 * math.exp(-0.9)], rtol=1e-12)
    np.testing.assert_allclose(nn.inverse_decay_lr(0.1, 0.5, 6, 1, 2),
                               [0.1 / (1 + 0.5 * i / 2) for i in range(6)], rtol=1e-12)
    np.testing.assert_allclose(nn.cosine_decay_lr(0.01, 0.1, 6, 2, 2),
                               [0.1, 0.1, 0.055, 0.055, 0.01, 0.01], rtol=1e-12)
    np.testing.assert_allclose(nn.polynomial_decay_lr(0.1, 0.01, 6, 2, 2, 0.5),
                               [0.1, 0.1, 0.07363961030678928, 0.07363961030678928, 0.01, 0.01], rtol=1e-12)
    # update_decay_epoch: the decay period grows past the end instead of stopping
    got = nn.polynomial_decay_lr(0.1, 0.01, 8, 1, 2, 1.0, update_decay_epoch=True)
    want = [0.09 * (1 - e / (2 * max(math.ceil(e / 2), 1))) + 0.01 for e in range(8)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[2] == pytest.approx(0.01) and got[3] == pytest.approx(0.0325)
    np.testing.assert_allclose(nn.warmup_lr(0.1, 6, 2, 2), [0.0, 0.0, 0.05, 0.05, 0.1, 0.1], rtol=1e-12)
    with pytest.raises(ValueError, match="total_step"):
        nn.warmup_lr(0.1, 0, 2, 2)
    with pytest.raises(ValueError, match="min_lr"):
        nn.cosine_decay_lr(0.2, 0.1, 6, 2, 2)


def test_cosine_list_matches_torch_cosine_annealing():
    lrs = nn.cosine_decay_lr(0.001, 0.1, 20, 1, 20)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=0.001)
    want = []
    for _ in range(20):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    np.testing.assert_allclose(lrs, want, rtol=1e-9)


# ---- LearningRateSchedule Cells ----

STEPS = [0, 1, 2, 3, 5, 7, 10, 13]


def values(cell, steps=STEPS):
    out = []
    for s in steps:
        v = cell(Tensor(np.array([s], np.int32))).asnumpy()
        assert v.shape == (1,) and v.dtype == np.float32
        out.append(float(v[0]))
    return out


SCHEDULES = [
    ("exp", lambda: nn.ExponentialDecayLR(0.1, 0.9, 4), lambda s: 0.1 * 0.9 ** (s / 4)),
    ("exp-stair", lambda: nn.ExponentialDecayLR(0.1, 0.9, 4, True), lambda s: 0.1 * 0.9 ** (s // 4)),
    ("natural", lambda: nn.NaturalExpDecayLR(0.1, 0.9, 4, True), lambda s: 0.1 * math.exp(-0.9 * (s // 4))),
    ("inverse", lambda: nn.InverseDecayLR(0.1, 0.5, 4), lambda s: 0.1 / (1 + 0.5 * s / 4)),
    ("cosine", lambda: nn.CosineDecayLR(0.01, 0.1, 10),
     lambda s: 0.01 + 0.045 * (1 + math.cos(math.pi * min(s, 10) / 10))),
    ("poly", lambda: nn.PolynomialDecayLR(0.1, 0.01, 6, 0.5), lambda s: 0.09 * (1 - min(s, 6) / 6) ** 0.5 + 0.01),
    ("poly-update", lambda: nn.PolynomialDecayLR(0.1, 0.01, 6, 2.0, True),
     lambda s: 0.09 * (1 - s / (6 * max(math.ceil(s / 6), 1))) ** 2 + 0.01),
    ("warmup", lambda: nn.WarmUpLR(0.1, 5), lambda s: 0.1 * min(s, 5) / 5),
]


@pytest.mark.parametrize("name", [s[0] for s in SCHEDULES])
def test_schedule_cell(mode, name):
    _, make, f = next(s for s in SCHEDULES if s[0] == name)
    np.testing.assert_allclose(values(make()), [f(s) for s in STEPS], rtol=2e-6, atol=1e-9)


def test_exponential_decay_matches_torch_exponential_lr(mode):
    cell = nn.ExponentialDecayLR(0.1, 0.8, 1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sch = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
    want = []
    for _ in range(8):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    np.testing.assert_allclose(values(cell, range(8)), want, rtol=2e-6)


def test_schedule_errors():
    with pytest.raises(ValueError, match="decay_steps"):
        nn.CosineDecayLR(0.0, 0.1, 0)
    with pytest.raises(ValueError, match="min_lr"):
        nn.CosineDecayLR(0.2, 0.1, 5)
    with pytest.raises(ValueError, match="warmup_steps"):
        nn.WarmUpLR(0.1, -1)
    with pytest.raises(TypeError, match="learning_rate"):
        nn.PolynomialDecayLR("a", 0.0, 3, 1.0)
    assert isinstance(nn.WarmUpLR(0.1, 2), nn.LearningRateSchedule)
