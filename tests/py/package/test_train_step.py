"""Parameters as run-time inputs (spore/_jit.py "lifting", ir_lift): gradients
with respect to a Cell's Parameters, and whole training steps
(nn.TrainOneStepCell) in both modes, against PyTorch; the GRAPH_MODE step
is one lowered kernel list."""
import copy
import os

import numpy as np
import pytest
import torch

import spore
from spore import nn, ops, Tensor, Parameter


class Dense(nn.Cell):
    def __init__(self, i, o, seed):
        super().__init__()
        r = np.random.RandomState(seed)
        self.weight = Parameter(Tensor(r.randn(o, i).astype(np.float32) * 0.5), name="weight")
        self.bias = Parameter(Tensor(r.randn(o).astype(np.float32) * 0.1), name="bias")

    def construct(self, x):
        return ops.matmul(x, self.weight.T) + self.bias


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = Dense(3, 8, 1)
        self.fc2 = Dense(8, 2, 2)

    def construct(self, x):
        return self.fc2(ops.relu(self.fc1(x)))


class MSE(nn.Cell):
    def construct(self, out, y):
        return ((out - y) ** 2).mean()


class PlainSGD(nn.Cell):
    def __init__(self, params, lr):
        super().__init__()
        self.parameters = tuple(params)
        self.lr = Tensor(np.float32(lr))

    def construct(self, grads):
        for p, g in zip(self.parameters, grads):
            ops.sgd_update(p, g, p, self.lr)
        return True


def torch_twin(net):
    t = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for i, d in ((0, net.fc1), (2, net.fc2)):
            t[i].weight.copy_(torch.tensor(d.weight.asnumpy()))
            t[i].bias.copy_(torch.tensor(d.bias.asnumpy()))
    return t


R = np.random.RandomState(0)
X = R.randn(16, 3).astype(np.float32)
Y = R.randn(16, 2).astype(np.float32)


def test_grad_wrt_cell_parameters(mode):
    net = Net()
    t = torch_twin(net)
    loss = ((t(torch.tensor(X)) - torch.tensor(Y)) ** 2).mean()
    loss.backward()
    fn = nn.WithLossCell(net, MSE())
    grads = spore.grad(fn, grad_position=None, weights=net.trainable_params())(Tensor(X), Tensor(Y))
    want = [t[0].weight.grad, t[0].bias.grad, t[2].weight.grad, t[2].bias.grad]
    names = [p.name for p in net.trainable_params()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.asnumpy(), w.numpy(), rtol=1e-5, atol=1e-6)
    # inputs and weights together: ((dx,), (dW...))
    (gx,), gw = spore.grad(fn, grad_position=(0,), weights=net.trainable_params())(Tensor(X), Tensor(Y))
    assert gx.shape == (16, 3) and len(gw) == 4


def test_value_and_grad_of_function_using_a_global_network(mode):
    net = Net()
    loss_fn = MSE()

    def forward(x, y):
        out = net(x)
        return loss_fn(out, y), out

    grad_fn = spore.value_and_grad(forward, None, net.trainable_params(), has_aux=True)
    (loss, out), grads = grad_fn(Tensor(X), Tensor(Y))
    t = torch_twin(net)
    tl = ((t(torch.tensor(X)) - torch.tensor(Y)) ** 2).mean()
    tl.backward()
    assert abs(float(loss.asnumpy()) - tl.item()) < 1e-5
    assert out.shape == (16, 2)
    np.testing.assert_allclose(grads[0].asnumpy(), t[0].weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_train_one_step_matches_torch(mode):
    net = Net()
    t = torch_twin(net)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, MSE()), PlainSGD(net.trainable_params(), 0.1))
    losses = [float(step(Tensor(X), Tensor(Y)).asnumpy()) for _ in range(6)]
    opt = torch.optim.SGD(t.parameters(), lr=0.1)
    want = []
    for _ in range(6):
        opt.zero_grad()
        lt = ((t(torch.tensor(X)) - torch.tensor(Y)) ** 2).mean()
        lt.backward()
        opt.step()
        want.append(lt.item())
    np.testing.assert_allclose(losses, want, rtol=1e-5)
    np.testing.assert_allclose(net.fc1.weight.asnumpy(), t[0].weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]


class Loss1(nn.Cell):
    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x):
        return (self.net(x) ** 2).mean()


class Loss4(nn.Cell):
    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x, a, b, c):
        return ((self.net(x) - (a + b * 0.5 - c)) ** 2).mean()


def _loss_cell(net, nin):
    return {1: Loss1, 2: lambda n: nn.WithLossCell(n, MSE()), 4: Loss4}[nin](net)


@pytest.mark.parametrize("nin", [1, 2, 4])
def test_graph_step_is_one_lowered_kernel_list(tmp_path, monkeypatch, nin):
    # TrainOneStepCell.construct(self, *inputs) forwards its inputs with
    # f(*inputs): the specializer spreads call_star over the static tuple,
    # so the whole step (forward, gradient, updates) is still one kernel list
    spore.set_context(mode=spore.GRAPH_MODE)
    monkeypatch.setenv("SPORE_DUMP_IR", str(tmp_path))
    net = Net()
    step = nn.TrainOneStepCell(_loss_cell(net, nin), PlainSGD(net.trainable_params(), 0.1))
    ins = [Tensor(X)] + [Tensor(Y + i) for i in range(nin - 1)]
    loss = float(step(*ins).asnumpy())
    text = (tmp_path / "05_lower.txt").read_text()
    assert text.startswith("lowered"), text
    fused = (tmp_path / "04_fuse.ir").read_text()
    assert "builtin.api" not in fused and "grad_call" not in fused and "call_star" not in fused
    assert text.count("sgd_update") == 4  # one kernel per parameter
    # the same step in PYNATIVE_MODE (Net() is seeded: the same weights)
    spore.set_context(mode=spore.PYNATIVE_MODE)
    twin = Net()
    want = float(nn.TrainOneStepCell(_loss_cell(twin, nin), PlainSGD(twin.trainable_params(), 0.1))(*ins).asnumpy())
    assert abs(loss - want) < 1e-5 * max(1.0, abs(want)), (loss, want)
    for p, q in zip(net.trainable_params(), twin.trainable_params()):
        np.testing.assert_allclose(p.asnumpy(), q.asnumpy(), rtol=1e-5, atol=1e-6)


def test_updates_are_seen_by_python_and_by_the_next_call():
    spore.set_context(mode=spore.GRAPH_MODE)
    net = Net()
    before = net.fc2.bias.asnumpy().copy()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, MSE()), PlainSGD(net.trainable_params(), 0.1))
    l1 = float(step(Tensor(X), Tensor(Y)).asnumpy())
    assert not np.array_equal(before, net.fc2.bias.asnumpy())
    # a Parameter changed from Python is what the compiled step reads next
    net.fc2.bias.set_data(Tensor(before))
    spore.set_context(mode=spore.PYNATIVE_MODE)
    want = float(nn.WithLossCell(net, MSE())(Tensor(X), Tensor(Y)).asnumpy())
    spore.set_context(mode=spore.GRAPH_MODE)
    assert abs(float(step(Tensor(X), Tensor(Y)).asnumpy()) - want) < 1e-6
    assert l1 > 0


def test_none_attribute_and_deepcopy(mode):
    class C(nn.Cell):
        def __init__(self, b):
            super().__init__()
            self.bias = b

        def construct(self, x):
            if self.bias is None:
                return x * 2
            return x + self.bias

    one = Tensor(np.ones(2, np.float32))
    assert C(None)(one).asnumpy().tolist() == [2.0, 2.0]
    assert C(one)(one).asnumpy().tolist() == [2.0, 2.0]
    net = Net()
    twin = copy.deepcopy(net)
    assert twin.fc1.weight is not net.fc1.weight
    np.testing.assert_array_equal(twin(Tensor(X)).asnumpy(), net(Tensor(X)).asnumpy())


def test_star_args_forwarding(mode):
    class Fwd(nn.Cell):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def construct(self, *inputs):
            return self.inner(*inputs)

    out = Fwd(nn.WithLossCell(Net(), MSE()))(Tensor(X), Tensor(Y))
    assert out.shape == ()


class _Bad(nn.Cell):
    def construct(self, x):
        y = x + "a"
        return y


def test_graph_error_points_at_the_method_line_and_column():
    spore.set_context(mode=spore.GRAPH_MODE)
    with pytest.raises(TypeError) as e:
        _Bad()(Tensor(np.ones(2, np.float32)))
    msg = str(e.value)
    import inspect
    line = inspect.getsourcelines(_Bad.construct)[1] + 1
    assert f"test_train_step.py:{line}:15: unsupported operand" in msg, msg
    assert msg.endswith('        y = x + "a"\n              ^'), msg


def test_set_train_switches_compiled_graphs_instead_of_dropping_them():
    spore.set_context(mode=spore.GRAPH_MODE)
    net = nn.SequentialCell([nn.Dense(4, 8), nn.Dropout(p=0.5), nn.Dense(8, 2)])
    x = Tensor(np.ones((3, 4), np.float32))
    net.set_train(False)
    a = net(x).asnumpy()
    eval_entry = net._spore_lifted[1]
    net.set_train(True)
    b = net(x).asnumpy()
    assert not np.array_equal(a, b)  # dropout is on in training
    train_entry = net._spore_lifted[1]
    net.set_train(False)
    assert net._spore_lifted[1] is eval_entry  # the eval graph is reused, not recompiled
    np.testing.assert_array_equal(net(x).asnumpy(), a)
    net.set_train(True)
    assert net._spore_lifted[1] is train_entry
