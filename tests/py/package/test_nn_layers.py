"""spore.nn layers against PyTorch 1.13 (CPU) on identical weights and inputs,
in both modes (the `mode` fixture): outputs, input gradients (spore.grad,
grad_position=0), weight gradients (weights=net.trainable_params()),
BatchNorm's running statistics, Dropout's statistics, parameter names and
shapes, and the errors bad arguments give."""
import math

import numpy as np
import pytest

import spore
from spore import Tensor, nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-4, 1e-5


def rnd(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def close(a, b, rtol=RTOL, atol=ATOL):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


class Weighted(nn.Cell):
    """sum(net(x) * w): a scalar whose gradient reaches every output element
    with a different weight."""

    def __init__(self, net, w):
        super().__init__()
        self.net = net
        self.w = Tensor(w)

    def construct(self, x):
        return (self.net(x) * self.w).sum()


def check_layer(net, tnet, x, params=(), rtol=RTOL, atol=ATOL, grad_x=True):
    """Forward, input gradient and (params: [(spore Parameter, torch
    tensor)]) weight gradients of net against tnet on x."""
    xt = torch.tensor(x.asnumpy() if hasattr(x, "asnumpy") else x, requires_grad=grad_x)
    for _, tp in params:
        tp.grad = None
    out_t = tnet(xt)
    w = rnd(*out_t.shape, seed=99)
    (out_t * torch.from_numpy(w)).sum().backward()
    xs = x if hasattr(x, "asnumpy") else Tensor(x)
    close(net(xs), out_t, rtol, atol)
    loss = Weighted(net, w)
    if grad_x:
        close(spore.grad(loss, grad_position=0)(xs), xt.grad, rtol, atol)
    if params:
        grads = spore.grad(loss, grad_position=None, weights=[p for p, _ in params])(xs)
        assert len(grads) == len(params)
        for g, (p, tp) in zip(grads, params):
            assert tuple(g.shape) == tuple(p.shape)
            close(g, tp.grad, rtol, atol)


def to_torch(p):
    return torch.nn.Parameter(torch.from_numpy(p.asnumpy().copy()))


# ---- Dense ----

@pytest.mark.parametrize("has_bias", [True, False])
def test_dense(mode, has_bias):
    net = nn.Dense(5, 3, has_bias=has_bias)
    assert [(n, tuple(p.shape)) for n, p in net.parameters_and_names()] == \
        [("weight", (3, 5))] + ([("bias", (3,))] if has_bias else [])
    assert (net.bias is None) != has_bias
    t = torch.nn.Linear(5, 3, bias=has_bias)
    t.weight = to_torch(net.weight)
    params = [(net.weight, t.weight)]
    if has_bias:
        t.bias = to_torch(net.bias)
        params.append((net.bias, t.bias))
    check_layer(net, t, rnd(4, 5), params)


def test_dense_nd_input_and_activation(mode):
    net = nn.Dense(6, 4, activation="tanh")
    t = torch.nn.Linear(6, 4)
    t.weight, t.bias = to_torch(net.weight), to_torch(net.bias)
    check_layer(net, lambda x: torch.tanh(t(x)), rnd(2, 3, 6), [(net.weight, t.weight), (net.bias, t.bias)])
    relu = nn.Dense(6, 4, activation=nn.ReLU())
    out = relu(Tensor(rnd(3, 6))).asnumpy()
    assert out.min() == 0 and out.max() > 0
    assert "activation=ReLU" in repr(relu) and "input_channels=6, output_channels=4" in repr(relu)


def test_dense_default_init():
    spore.set_seed(0)
    net = nn.Dense(400, 300)
    w, b = net.weight.asnumpy(), net.bias.asnumpy()
    bound = 1 / math.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 1e-3
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    net2 = nn.Dense(3, 2, weight_init="ones", bias_init=Tensor(np.array([1.0, 2.0], np.float32)))
    assert (net2.weight.asnumpy() == 1).all() and net2.bias.asnumpy().tolist() == [1.0, 2.0]


# ---- Conv2d ----

def _tf_same(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def torch_conv(x, w, b, stride, pad_mode, padding, dilation, groups):
    """PyTorch with MindSpore's padding: 'same' puts the odd pixel at the
    bottom/right; 'pad' takes (top, bottom, left, right)."""
    if pad_mode == "same":
        t, bo = _tf_same(x.shape[2], w.shape[2], stride[0], dilation[0])
        le, r = _tf_same(x.shape[3], w.shape[3], stride[1], dilation[1])
        x = F.pad(x, (le, r, t, bo))
    elif pad_mode == "pad":
        t, bo, le, r = padding
        x = F.pad(x, (le, r, t, bo))
    return F.conv2d(x, w, b, stride, 0, dilation, groups)


CONV_CASES = [
    # in, out, kernel, stride, pad_mode, padding, dilation, group, has_bias, input hw
    (3, 4, 3, 1, "same", 0, 1, 1, False, (8, 8)),
    (3, 4, 3, 2, "same", 0, 1, 1, True, (9, 7)),
    (2, 6, (2, 3), 2, "same", 0, 1, 2, True, (8, 9)),
    (3, 4, 3, 1, "valid", 0, 1, 1, True, (7, 8)),
    (4, 4, 3, (2, 1), "valid", 0, 2, 4, False, (11, 10)),
    (3, 5, 3, 1, "pad", 1, 1, 1, True, (6, 6)),
    (3, 2, (3, 2), 2, "pad", (1, 2, 0, 1), 1, 1, True, (7, 8)),
    (4, 6, 3, 1, "pad", (2, 1), (2, 2), 2, False, (9, 9)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"{c[4]}-s{c[3]}-d{c[6]}-g{c[7]}-b{int(c[8])}" for c in CONV_CASES])
def test_conv2d(mode, case):
    cin, cout, k, stride, pad_mode, padding, dilation, group, has_bias, hw = case
    net = nn.Conv2d(cin, cout, k, stride, pad_mode, padding, dilation, group, has_bias)
    kk = (k, k) if isinstance(k, int) else k
    assert tuple(net.weight.shape) == (cout, cin // group) + kk
    assert [n for n, _ in net.parameters_and_names()] == ["weight"] + (["bias"] if has_bias else [])
    w = to_torch(net.weight)
    b = to_torch(net.bias) if has_bias else None
    fn = lambda x: torch_conv(x, w, b, net.stride, pad_mode, net.padding, net.dilation, group)  # noqa: E731
    params = [(net.weight, w)] + ([(net.bias, b)] if has_bias else [])
    check_layer(net, fn, rnd(2, cin, *hw), params, rtol=2e-4, atol=2e-5)


def test_conv2d_same_shape_and_default_init():
    spore.set_seed(0)
    net = nn.Conv2d(8, 16, 5, stride=3, has_bias=True)
    assert net(Tensor(rnd(1, 8, 10, 11))).shape == (1, 16, 4, 4)     # ceil(10/3), ceil(11/3)
    bound = 1 / math.sqrt(8 * 25)
    w = net.weight.asnumpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert np.abs(net.bias.asnumpy()).max() <= bound
    assert "pad_mode=same" in repr(net) and "has_bias=True" in repr(net)


# ---- pooling ----

def torch_pool_same(x, k, s, kind):
    t, bo = _tf_same(x.shape[2], k[0], s[0], 1)
    le, r = _tf_same(x.shape[3], k[1], s[1], 1)
    if kind == "max":
        return F.max_pool2d(F.pad(x, (le, r, t, bo), value=-math.inf), k, s)
    total = F.avg_pool2d(F.pad(x, (le, r, t, bo)), k, s)
    count = F.avg_pool2d(F.pad(torch.ones_like(x), (le, r, t, bo)), k, s)
    return total / count     # 'same' averages over the real cells only


POOL_CASES = [((2, 2), (2, 2), "valid", 0), ((3, 3), (1, 1), "valid", 0), ((3, 2), (2, 1), "valid", 0),
              ((3, 3), (2, 2), "same", 0), ((2, 3), (3, 2), "same", 0), ((3, 3), (2, 2), "pad", 1),
              ((3, 3), (1, 2), "pad", (1, 0, 1, 1))]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[2]}-k{c[0]}-s{c[1]}" for c in POOL_CASES])
def test_pool2d(mode, kind, case):
    k, s, pad_mode, padding = case
    cls = nn.MaxPool2d if kind == "max" else nn.AvgPool2d
    net = cls(k, s, pad_mode, padding)
    if pad_mode == "same":
        fn = lambda x: torch_pool_same(x, k, s, kind)  # noqa: E731
    else:
        t, bo, le, r = net.padding
        if kind == "max":
            fn = lambda x: F.max_pool2d(F.pad(x, (le, r, t, bo), value=-math.inf), k, s)  # noqa: E731
        else:
            fn = lambda x: F.avg_pool2d(F.pad(x, (le, r, t, bo)), k, s)  # noqa: E731  (count_include_pad)
    check_layer(net, fn, rnd(2, 3, 9, 8))


def test_pool_defaults():
    x = Tensor(rnd(1, 2, 5, 5))
    assert np.array_equal(nn.MaxPool2d()(x).asnumpy(), x.asnumpy())   # kernel 1, stride 1
    assert nn.AvgPool2d(kernel_size=2)(x).shape == (1, 2, 4, 4)       # stride stays 1 (MindSpore)
    assert "kernel_size=(2, 2)" in repr(nn.AvgPool2d(2))


# ---- activations, Softmax, Flatten ----

ACTS = [
    (lambda: nn.ReLU(), torch.relu),
    (lambda: nn.ReLU6(), F.relu6),
    (lambda: nn.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1)),
    (lambda: nn.GELU(), lambda x: F.gelu(x, approximate="tanh")),
    (lambda: nn.GELU(approximate=False), F.gelu),
    (lambda: nn.SiLU(), F.silu),
    (lambda: nn.Sigmoid(), torch.sigmoid),
    (lambda: nn.Tanh(), torch.tanh),
    (lambda: nn.Softmax(), lambda x: torch.softmax(x, -1)),
    (lambda: nn.Softmax(axis=1), lambda x: torch.softmax(x, 1)),
    (lambda: nn.LogSoftmax(), lambda x: torch.log_softmax(x, -1)),
    (lambda: nn.LogSoftmax(axis=0), lambda x: torch.log_softmax(x, 0)),
]


@pytest.mark.parametrize("i", range(len(ACTS)))
def test_activation(mode, i):
    make, tfn = ACTS[i]
    check_layer(make(), tfn, rnd(3, 4, 5, scale=2.0))


def test_flatten(mode):
    check_layer(nn.Flatten(), lambda x: torch.flatten(x, 1), rnd(2, 3, 4, 5))
    check_layer(nn.Flatten(0, 1), lambda x: torch.flatten(x, 0, 1), rnd(2, 3, 4))


# ---- Dropout ----

def test_dropout(mode):
    x = Tensor(np.ones((200, 500), np.float32))
    net = nn.Dropout(p=0.3)
    assert net.p == 0.3 and nn.Dropout(keep_prob=0.8).p == pytest.approx(0.2) and nn.Dropout().p == 0.5
    assert np.array_equal(net(x).asnumpy(), x.asnumpy())          # a new Cell evaluates
    net.set_train()
    a, b = net(x).asnumpy(), net(x).asnumpy()
    kept = a != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(a[kept], 1 / 0.7, rtol=1e-6)        # survivors scaled by 1/(1-p)
    assert not np.array_equal(a, b)                                 # a new mask every call
    g = spore.grad(Weighted(net, np.ones((200, 500), np.float32)))(x).asnumpy()
    np.testing.assert_allclose(g[g != 0], 1 / 0.7, rtol=1e-6)
    assert abs((g != 0).mean() - 0.7) < 0.01
    net.set_train(False)
    assert np.array_equal(net(x).asnumpy(), x.asnumpy())
    assert np.array_equal(nn.Dropout(p=0.0).set_train()(x).asnumpy(), x.asnumpy())


# ---- BatchNorm ----

@pytest.mark.parametrize("dims", [2, 3, 4])
def test_batchnorm_train_and_eval(mode, dims):
    c = 3
    shape = {2: (8, c), 3: (4, c, 5), 4: (4, c, 5, 6)}[dims]
    net = (nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d)(c, momentum=0.8)
    t = (torch.nn.BatchNorm2d if dims == 4 else torch.nn.BatchNorm1d)(c, momentum=0.2)  # torch's = 1 - MindSpore's
    gamma, beta = rnd(c, seed=1) + 1, rnd(c, seed=2)
    net.gamma.set_data(Tensor(gamma))
    net.beta.set_data(Tensor(beta))
    t.weight, t.bias = torch.nn.Parameter(torch.from_numpy(gamma)), torch.nn.Parameter(torch.from_numpy(beta))
    assert [(n, p.requires_grad) for n, p in net.parameters_and_names()] == \
        [("moving_mean", False), ("moving_variance", False), ("gamma", True), ("beta", True)]
    assert [p.name for p in net.trainable_params()] == ["gamma", "beta"]
    net.set_train()
    t.train()
    x = rnd(*shape, seed=3, scale=2.0) + 0.5
    # check_layer runs the forward three times (value, input grad, weight
    # grads), as torch's running stats must too
    check_layer(net, t, x, [(net.gamma, t.weight), (net.beta, t.bias)])
    t(torch.from_numpy(x))
    t(torch.from_numpy(x))
    close(net.moving_mean, t.running_mean, 1e-5, 1e-6)
    close(net.moving_variance, t.running_var, 1e-5, 1e-6)
    # evaluation: the moving statistics, and they stay put
    net.set_train(False)
    t.eval()
    mm = net.moving_mean.asnumpy().copy()
    check_layer(net, t, rnd(*shape, seed=4), [(net.gamma, t.weight), (net.beta, t.bias)])
    assert np.array_equal(net.moving_mean.asnumpy(), mm)


class _OpsBatchNorm(nn.Cell):
    """ops.batch_norm through the API table (not the layer's primitive)."""

    def __init__(self, c, training, seed):
        super().__init__()
        self.running_mean = spore.Parameter(Tensor(rnd(c, seed=seed) * 0.1), requires_grad=False)
        self.running_var = spore.Parameter(Tensor(np.abs(rnd(c, seed=seed + 1)) + 0.5), requires_grad=False)
        self.weight = spore.Parameter(Tensor(rnd(c, seed=seed + 2) + 1))
        self.bias = spore.Parameter(Tensor(rnd(c, seed=seed + 3)))
        self.is_training = training

    def construct(self, x):
        return spore.ops.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                    self.is_training, 0.1, 1e-3)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dims", [2, 4])
def test_ops_batch_norm_gradients(mode, training, dims):
    # the API call differentiates (input, weight, bias) in both modes, as
    # torch.nn.functional.batch_norm with the same eps
    c = 3
    shape = (6, c) if dims == 2 else (4, c, 3, 5)
    net = _OpsBatchNorm(c, training, seed=7)
    rm, rv = to_torch(net.running_mean), to_torch(net.running_var)
    tw, tb = to_torch(net.weight), to_torch(net.bias)

    def tnet(x):
        return torch.nn.functional.batch_norm(x, rm.detach().clone(), rv.detach().clone(), tw, tb,
                                              training, 0.1, 1e-3)
    check_layer(net, tnet, rnd(*shape, seed=8, scale=2.0) + 0.5, [(net.weight, tw), (net.bias, tb)])


def test_batchnorm_use_batch_statistics(mode):
    x = Tensor(rnd(6, 2, 3, 3, seed=5) * 3 + 1)
    always = nn.BatchNorm2d(2, use_batch_statistics=True)          # batch stats even in eval
    y = always(x).asnumpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert not np.array_equal(always.moving_mean.asnumpy(), np.zeros(2, np.float32))
    never = nn.BatchNorm2d(2, use_batch_statistics=False).set_train()  # moving stats even in training
    np.testing.assert_allclose(never(x).asnumpy(), x.asnumpy() / math.sqrt(1 + 1e-5), rtol=1e-6)
    assert np.array_equal(never.moving_mean.asnumpy(), np.zeros(2, np.float32))
    frozen = nn.BatchNorm1d(4, affine=False)
    assert len(frozen.trainable_params()) == 0 and len(frozen.untrainable_params()) == 4


def test_batchnorm_in_a_network_updates_the_running_stats(mode):
    net = nn.SequentialCell([nn.Conv2d(2, 3, 3, has_bias=True), nn.BatchNorm2d(3), nn.ReLU()])
    assert [n for n, _ in net.parameters_and_names()] == \
        ["0.weight", "0.bias", "1.moving_mean", "1.moving_variance", "1.gamma", "1.beta"]
    net.set_train()
    x = Tensor(rnd(4, 2, 6, 6, seed=8))
    h = net[0](x).asnumpy()
    net(x)
    expect = 0.1 * h.mean(axis=(0, 2, 3))                           # 0.9 * 0 + 0.1 * batch mean
    np.testing.assert_allclose(net[1].moving_mean.asnumpy(), expect, rtol=1e-5, atol=1e-6)


# ---- LayerNorm ----

def test_layernorm(mode):
    net = nn.LayerNorm((6,))
    assert [(n, tuple(p.shape)) for n, p in net.parameters_and_names()] == [("gamma", (6,)), ("beta", (6,))]
    net.gamma.set_data(Tensor(rnd(6, seed=1) + 1))
    net.beta.set_data(Tensor(rnd(6, seed=2)))
    t = torch.nn.LayerNorm(6, eps=1e-7)
    t.weight, t.bias = to_torch(net.gamma), to_torch(net.beta)
    check_layer(net, t, rnd(3, 4, 6, seed=3, scale=3.0), [(net.gamma, t.weight), (net.beta, t.bias)])


def test_layernorm_over_two_axes(mode):
    net = nn.LayerNorm((4, 5), begin_norm_axis=-2, begin_params_axis=-2, epsilon=1e-5)
    net.gamma.set_data(Tensor(rnd(4, 5, seed=1)))
    t = torch.nn.LayerNorm((4, 5), eps=1e-5)
    t.weight, t.bias = to_torch(net.gamma), to_torch(net.beta)
    check_layer(net, t, rnd(3, 4, 5, seed=2), [(net.gamma, t.weight), (net.beta, t.bias)])


def test_layernorm_params_axis_differs(mode):
    # normalize over (4, 5), scale per last axis only
    net = nn.LayerNorm((5,), begin_norm_axis=1, begin_params_axis=-1, epsilon=1e-5)
    net.gamma.set_data(Tensor(rnd(5, seed=1)))
    net.beta.set_data(Tensor(rnd(5, seed=6)))
    g, b = to_torch(net.gamma), to_torch(net.beta)
    fn = lambda x: F.layer_norm(x, (4, 5), eps=1e-5) * g + b  # noqa: E731
    check_layer(net, fn, rnd(3, 4, 5, seed=2), [(net.gamma, g), (net.beta, b)])


# ---- Embedding ----

@pytest.mark.parametrize("one_hot", [False, True])
def test_embedding(mode, one_hot):
    spore.set_seed(2)
    net = nn.Embedding(10, 4, use_one_hot=one_hot)
    w = net.embedding_table.asnumpy()
    assert w.shape == (10, 4) and abs(w.std() - 0.01) < 0.005       # Normal(0.01)
    assert [n for n, _ in net.parameters_and_names()] == ["embedding_table"]
    ids = np.array([[1, 2, 2], [9, 0, 1]], np.int32)
    t = torch.nn.Embedding(10, 4)
    t.weight = to_torch(net.embedding_table)
    out = net(Tensor(ids))
    assert out.shape == (2, 3, 4)
    tout = t(torch.from_numpy(ids.astype(np.int64)))
    close(out, tout)
    wgt = rnd(2, 3, 4, seed=3)
    (tout * torch.from_numpy(wgt)).sum().backward()
    g = spore.grad(Weighted(net, wgt), grad_position=None, weights=[net.embedding_table])(Tensor(ids))
    close(g[0], t.weight.grad)


def test_embedding_padding_idx():
    net = nn.Embedding(6, 3, padding_idx=2, embedding_table="ones")
    w = net.embedding_table.asnumpy()
    assert (w[2] == 0).all() and (np.delete(w, 2, axis=0) == 1).all()
    assert net(Tensor(np.array([2, 3], np.int32))).asnumpy().tolist() == [[0, 0, 0], [1, 1, 1]]


# ---- containers ----

def test_sequential_cell(mode):
    spore.set_seed(0)
    d1, d2 = nn.Dense(4, 8), nn.Dense(8, 3)
    seq = nn.SequentialCell([d1, nn.ReLU(), d2])
    assert len(seq) == 3 and seq[0] is d1 and seq[-1] is d2
    assert [n for n, _ in seq.parameters_and_names()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.name for p in seq.get_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    t1, t2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)
    t1.weight, t1.bias, t2.weight, t2.bias = (to_torch(p) for p in (d1.weight, d1.bias, d2.weight, d2.bias))
    tseq = torch.nn.Sequential(t1, torch.nn.ReLU(), t2)
    check_layer(seq, tseq, rnd(5, 4), [(d1.weight, t1.weight), (d1.bias, t1.bias), (d2.weight, t2.weight),
                                       (d2.bias, t2.bias)])
    seq.append(nn.Softmax())
    assert len(seq) == 4
    np.testing.assert_allclose(seq(Tensor(rnd(5, 4))).asnumpy().sum(axis=-1), 1, rtol=1e-5)
    head = seq[:2]
    assert isinstance(head, nn.SequentialCell) and len(head) == 2 and head(Tensor(rnd(5, 4))).shape == (5, 8)
    del seq[3]
    assert len(seq) == 3 and seq(Tensor(rnd(5, 4))).shape == (5, 3)


def test_sequential_cell_names_and_nesting(mode):
    from collections import OrderedDict
    seq = nn.SequentialCell(OrderedDict([("fc", nn.Dense(3, 2)), ("act", nn.Sigmoid())]))
    assert [n for n, _ in seq.parameters_and_names()] == ["fc.weight", "fc.bias"]
    assert seq.fc is seq[0]

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.body = nn.SequentialCell(nn.Dense(3, 3), nn.ReLU())
            self.head = seq

        def construct(self, x):
            return self.head(self.body(x))
    net = Net()
    assert [p.name for p in net.get_parameters()] == ["body.0.weight", "body.0.bias", "head.fc.weight",
                                                       "head.fc.bias"]
    # inserting at the front renumbers, parent prefix kept
    net.body.insert(0, nn.Dense(3, 3, has_bias=False))
    assert [p.name for p in net.body.get_parameters()] == ["body.0.weight", "body.1.weight", "body.1.bias"]
    out = net(Tensor(rnd(2, 3))).asnumpy()
    assert out.shape == (2, 2) and ((out > 0) & (out < 1)).all()


def test_cell_list(mode):
    layers = nn.CellList([nn.Dense(4, 4), nn.Dense(4, 4)])
    layers.append(nn.Dense(4, 2))
    layers.extend([nn.ReLU()])
    layers.insert(1, nn.Tanh())
    assert len(layers) == 5 and [type(c).__name__ for c in layers] == ["Dense", "Tanh", "Dense", "Dense", "ReLU"]
    assert [p.name for p in layers.get_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight",
                                                         "3.bias"]
    assert isinstance(layers[1:3], nn.CellList) and len(layers[1:3]) == 2

    class Net(nn.Cell):
        def __init__(self, layers):
            super().__init__()
            self.layers = layers

        def construct(self, x):
            for layer in self.layers:
                x = layer(x)
            return x + self.layers[4](x)
    net = Net(layers)
    assert [p.name for p in net.trainable_params()][:2] == ["layers.0.weight", "layers.0.bias"]
    x = rnd(3, 4)
    ref = Tensor(x)
    for c in layers:
        ref = c(ref)
    spore.set_context(mode=mode)
    np.testing.assert_allclose(net(Tensor(x)).asnumpy(), 2 * ref.asnumpy(), rtol=1e-5, atol=1e-6)
    grads = spore.grad(Weighted(net, np.ones((3, 2), np.float32)), grad_position=None,
                       weights=net.trainable_params())(Tensor(x))
    assert len(grads) == 6 and all(tuple(g.shape) == tuple(p.shape) for g, p in zip(grads, net.trainable_params()))
    with pytest.raises(TypeError, match="expected a Cell"):
        layers.append(3)
    with pytest.raises(IndexError):
        layers[7]


def test_set_train_reaches_nested_layers():
    net = nn.SequentialCell([nn.Dense(3, 3), nn.CellList([nn.Dropout(p=0.5)])])
    net.set_train()
    assert net[1][0].training
    net.set_train(False)
    assert not net[1][0].training


# ---- repr and errors ----

def test_every_layer_has_extend_repr():
    for cell, text in [(nn.Dense(2, 3), "input_channels=2, output_channels=3"),
                       (nn.Conv2d(2, 3, 3), "kernel_size=(3, 3)"),
                       (nn.MaxPool2d(2, 2), "stride=(2, 2)"), (nn.AvgPool2d(3), "kernel_size=(3, 3)"),
                       (nn.Flatten(), "start_dim=1"), (nn.Dropout(p=0.1), "p=0.1"),
                       (nn.GELU(), "approximate=True"), (nn.Softmax(0), "axis=0"), (nn.LogSoftmax(), "axis=-1"),
                       (nn.BatchNorm2d(3), "num_features=3"), (nn.BatchNorm1d(2), "momentum=0.9"),
                       (nn.LayerNorm((4,)), "normalized_shape=(4,)"), (nn.Embedding(5, 2), "vocab_size=5"),
                       (nn.LeakyReLU(0.3), "alpha=0.3")]:
        assert text in repr(cell), (cell, text)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.Dense(0, 3), ValueError, "Dense: 'in_channels' must be at least 1"),
    (lambda: nn.Dense(2.5, 3), TypeError, "Dense: 'in_channels' must be an int"),
    (lambda: nn.Dense(2, 3, has_bias=1), TypeError, "'has_bias' must be a bool"),
    (lambda: nn.Dense(2, 3, activation="swish"), ValueError, "unknown activation 'swish'"),
    (lambda: nn.Dense(2, 3, activation=3), TypeError, "'activation' must be"),
    (lambda: nn.Dense(2, 3, weight_init="nope"), ValueError, "'weight_init'.*unknown initializer"),
    (lambda: nn.Dense(2, 3, weight_init=Tensor(np.zeros((2, 3), np.float32))), ValueError,
     r"'weight_init' has shape \(2, 3\), expected \(3, 2\)"),
    (lambda: nn.Conv2d(3, 4, 3, pad_mode="full"), ValueError, "'pad_mode' must be 'same', 'valid' or 'pad'"),
    (lambda: nn.Conv2d(3, 4, 3, padding=1), ValueError, "'padding' must be 0 when 'pad_mode' is not 'pad'"),
    (lambda: nn.Conv2d(3, 4, 3, pad_mode="pad", padding=(1, 2, 3)), TypeError, "'padding' must be an int or"),
    (lambda: nn.Conv2d(3, 4, 3, group=2), ValueError, r"'group' \(2\) must divide"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, "'kernel_size' must be at least 1"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, "'kernel_size' must be an int or a tuple of 2"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "'stride' must be at least 1"),
    (lambda: nn.Conv2d(3, 4, 3, data_format="NHWC"), ValueError, "'data_format' must be 'NCHW'"),
    (lambda: nn.MaxPool2d(2, pad_mode="pad", padding=2), ValueError, "at most half of 'kernel_size'"),
    (lambda: nn.MaxPool2d(2, dilation=2), ValueError, "'dilation' other than 1"),
    (lambda: nn.AvgPool2d(2, divisor_override=3), ValueError, "'divisor_override' is not supported"),
    (lambda: nn.Dropout(p=1.0), ValueError, r"'p' must be in \[0.0, 1.0\)"),
    (lambda: nn.Dropout(keep_prob=0.0), ValueError, r"'keep_prob' must be in \(0.0, 1.0\]"),
    (lambda: nn.Dropout(p="a"), TypeError, "'p' must be a number"),
    (lambda: nn.BatchNorm2d(0), ValueError, "'num_features' must be at least 1"),
    (lambda: nn.BatchNorm2d(3, momentum=1.5), ValueError, "'momentum' must be in"),
    (lambda: nn.BatchNorm1d(3, eps=0), ValueError, "'eps' must be in"),
    (lambda: nn.BatchNorm1d(3, use_batch_statistics=1), TypeError, "'use_batch_statistics' must be a bool"),
    (lambda: nn.BatchNorm2d(3, gamma_init=Tensor(np.ones(4, np.float32))), ValueError, "'gamma_init' has shape"),
    (lambda: nn.LayerNorm(5), TypeError, "'normalized_shape' must be a tuple or list"),
    (lambda: nn.LayerNorm(()), ValueError, "'normalized_shape' must not be empty"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, r"'padding_idx' must be in \[0, 5\)"),
    (lambda: nn.Embedding(5, 2, dtype=spore.float32), TypeError, "'dtype' .* must be spore.int32"),
    (lambda: nn.Softmax(axis=1.0), TypeError, "'axis' must be an int"),
    (lambda: nn.GELU(approximate="tanh"), TypeError, "'approximate' must be a bool"),
    (lambda: nn.SequentialCell([nn.ReLU(), "relu"]), TypeError, "expected a Cell, got str"),
    (lambda: nn.CellList([nn.ReLU()], [nn.ReLU()]), TypeError, "takes one list"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_inputs_raise_not_crash(mode):
    with pytest.raises(Exception, match="."):
        nn.Dense(3, 2)(Tensor(rnd(4, 5)))
    with pytest.raises(Exception, match="."):
        nn.Conv2d(3, 2, 3)(Tensor(rnd(1, 4, 5, 5)))
    with pytest.raises(Exception, match="."):
        nn.Embedding(4, 2)(Tensor(np.array([4], np.int32)))
    with pytest.raises((NotImplementedError, RuntimeError), match="CellList is not callable"):
        nn.CellList([nn.ReLU()])(Tensor(rnd(2)))
