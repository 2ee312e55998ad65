"""spore.nn losses against PyTorch 1.13 (CPU) on identical inputs: the loss
values and the gradient with respect to the logits (spore.grad), for every
reduction, in both modes; labels of several integer dtypes; the errors a
user can cause."""
import numpy as np
import pytest
import torch

import spore
from spore import Tensor, nn

RTOL = 2e-5
ATOL = 1e-6
REDUCTIONS = ["mean", "sum", "none"]


def rng(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


def check(loss_cell, torch_fn, logits, labels, rtol=RTOL, atol=ATOL):
    """loss_cell(logits, labels) and d/dlogits of its sum (weighted by a
    fixed cotangent for 'none') against torch_fn on the same data."""
    x = Tensor(logits)
    y = Tensor(labels)
    got = loss_cell(x, y).asnumpy()
    xt = torch.tensor(logits, requires_grad=True)
    want = torch_fn(xt, torch.tensor(labels))
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=rtol, atol=atol)
    # gradient: of loss*c summed, c fixed, so 'none' checks every entry
    c = rng("cot", got.shape).uniform(0.5, 1.5, got.shape).astype(np.float32)
    ct = Tensor(c)

    def f(a, b):
        return (loss_cell(a, b) * ct).sum()
    g = spore.grad(f, grad_position=0)(x, y).asnumpy()
    (want * torch.tensor(c)).sum().backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=rtol * 5, atol=atol * 5)
    return got


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_l1(mode, reduction):
    r = rng("mse", reduction)
    a = r.standard_normal((4, 5)).astype(np.float32)
    b = r.standard_normal((4, 5)).astype(np.float32)
    check(nn.MSELoss(reduction), lambda x, y: torch.nn.functional.mse_loss(x, y, reduction=reduction), a, b)
    check(nn.L1Loss(reduction), lambda x, y: torch.nn.functional.l1_loss(x, y, reduction=reduction), a, b)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(mode, reduction):
    r = rng("bce", reduction)
    x = (r.standard_normal((6, 3)) * 4).astype(np.float32)
    x[0, 0], x[1, 1] = 60.0, -60.0  # large logits stay finite
    y = r.uniform(0, 1, (6, 3)).astype(np.float32)
    w = r.uniform(0.5, 2, (3,)).astype(np.float32)
    pw = r.uniform(0.5, 3, (3,)).astype(np.float32)
    F = torch.nn.functional.binary_cross_entropy_with_logits
    check(nn.BCEWithLogitsLoss(reduction), lambda a, b: F(a, b, reduction=reduction), x, y)
    check(nn.BCEWithLogitsLoss(reduction, weight=Tensor(w), pos_weight=Tensor(pw)),
          lambda a, b: F(a, b, weight=torch.tensor(w), pos_weight=torch.tensor(pw), reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint8])
def test_softmax_cross_entropy_sparse(mode, reduction, label_dtype):
    r = rng("sce", reduction)
    x = (r.standard_normal((8, 10)) * 3).astype(np.float32)
    y = r.integers(0, 10, 8).astype(label_dtype)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction=reduction)
    check(loss, lambda a, b: torch.nn.functional.cross_entropy(a, b.long(), reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_dense(mode, reduction):
    r = rng("scd", reduction)
    x = (r.standard_normal((5, 4)) * 2).astype(np.float32)
    y = r.uniform(0, 1, (5, 4)).astype(np.float32)
    y /= y.sum(1, keepdims=True)

    def ref(a, b):
        loss = -(b * torch.log_softmax(a, -1)).sum(-1)
        return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]
    check(nn.SoftmaxCrossEntropyWithLogits(sparse=False, reduction=reduction), ref, x, y)
    assert nn.SoftmaxCrossEntropyWithLogits().reduction == "none"  # MindSpore's default


CE_CONFIGS = [
    {},                                            # the fused primitive
    {"weight": True},
    {"ignore_index": 2},
    {"label_smoothing": 0.1},
    {"weight": True, "ignore_index": 1, "label_smoothing": 0.2},
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cfg", range(len(CE_CONFIGS)))
def test_cross_entropy_loss(mode, reduction, cfg):
    c = CE_CONFIGS[cfg]
    r = rng("ce", reduction, cfg)
    x = (r.standard_normal((12, 5)) * 2).astype(np.float32)
    y = r.integers(0, 5, 12).astype(np.int32)
    y[:3] = [2, 1, 2]  # every ignore_index in CE_CONFIGS occurs
    w = r.uniform(0.3, 2, 5).astype(np.float32) if c.get("weight") else None
    kw = {"ignore_index": c.get("ignore_index", -100), "label_smoothing": c.get("label_smoothing", 0.0)}
    loss = nn.CrossEntropyLoss(weight=None if w is None else Tensor(w), reduction=reduction, **kw)
    assert loss._fused == (cfg == 0)
    check(loss, lambda a, b: torch.nn.functional.cross_entropy(
        a, b.long(), weight=None if w is None else torch.tensor(w), reduction=reduction, **kw), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(mode, reduction, weighted):
    r = rng("nll", reduction, weighted)
    x = np.log(r.dirichlet(np.ones(6), 9)).astype(np.float32)
    y = r.integers(0, 6, 9).astype(np.int64)
    y[4] = 3
    w = r.uniform(0.3, 2, 6).astype(np.float32) if weighted else None
    loss = nn.NLLLoss(weight=None if w is None else Tensor(w), ignore_index=3, reduction=reduction)
    check(loss, lambda a, b: torch.nn.functional.nll_loss(
        a, b, weight=None if w is None else torch.tensor(w), ignore_index=3, reduction=reduction), x, y)


def test_loss_in_a_training_cell(mode):
    """A loss as the sub-cell of a network (the WithLossCell pattern)."""
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.loss = nn.CrossEntropyLoss()

        def construct(self, x, y):
            return self.loss(x * 2.0, y)
    r = rng("net")
    x = r.standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 2, 1, 2], np.uint8)
    got = Net()(Tensor(x), Tensor(y)).asnumpy()
    want = torch.nn.functional.cross_entropy(torch.tensor(x * 2), torch.tensor(y).long()).item()
    assert abs(float(got) - want) < 1e-5


def test_errors():
    for cls in (nn.MSELoss, nn.L1Loss, nn.BCEWithLogitsLoss):
        with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
            cls(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="max")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    # a label out of range is an error naming the primitive, never a crash
    loss = nn.CrossEntropyLoss()
    with pytest.raises(Exception, match="out of range"):
        loss(Tensor(np.zeros((2, 3), np.float32)), Tensor(np.array([0, 7], np.int32)))
    with pytest.raises(Exception, match="out of range|index"):
        nn.NLLLoss()(Tensor(np.zeros((2, 3), np.float32)), Tensor(np.array([0, 7], np.int32)))
