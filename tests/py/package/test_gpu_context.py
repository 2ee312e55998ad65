"""set_context(device_target="GPU"): the whole package on the GPU.

With device_target="GPU" the C library's default device is cuda:0
(spore/context.py), so tensors made without a device -- Tensor(ndarray),
ops.* creation, the initializers behind Parameters -- live on the GPU, a
GRAPH_MODE call moves CPU arguments there, and host reads (asnumpy, item,
printing, the buffer protocol) copy back.  On a GPU these tests check the
MindSpore README example in both modes, a LeNet-5 TrainOneStepCell for 5
steps in both modes against the same steps on the CPU (losses and every
parameter to 1e-4), Model.train over a NumpySlicesDataset, a checkpoint
saved from GPU parameters loaded on the CPU, and set_context back to CPU.
They skip, saying why, without a GPU (CI).  The default-device API and its
errors are checked everywhere.
"""
import os

import numpy as np
import pytest

import spore
from spore import Tensor, Parameter, nn, ops, _C
from spore.train import Model
from spore.train.serialization import save_checkpoint, load_checkpoint, load_param_into_net

HAVE_GPU, WHY = _C.cuda_available()
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason=f"no GPU: {WHY}")


@pytest.fixture(autouse=True)
def _cpu_after():
    yield
    spore.set_context(device_target="CPU")


# ---- everywhere --------------------------------------------------------------------

def test_default_device_is_the_cpu():
    assert _C.default_device() == "cpu"
    spore.set_context(device_target="CPU")
    assert _C.default_device() == "cpu" and spore.get_context("device_target") == "CPU"
    assert Tensor(np.ones(3, np.float32)).device == "CPU"
    assert ops.zeros((2,)).device == "CPU"


def test_bad_targets_and_ids():
    with pytest.raises(ValueError, match="device_target must be 'CPU' or 'GPU'"):
        spore.set_context(device_target="TPU")
    with pytest.raises(ValueError, match="device_id must be an int >= 0"):
        spore.set_context(device_target="CPU", device_id=-1)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        _C.set_default_device("tpu")
    assert spore.get_context("device_target") == "CPU" and _C.default_device() == "cpu"


def test_gpu_target_without_a_gpu():
    if HAVE_GPU:
        pytest.skip("there is a GPU")
    with pytest.raises(RuntimeError, match="no usable GPU: no CUDA backend"):
        spore.set_context(device_target="GPU")
    with pytest.raises(RuntimeError, match="cuda:0 is not available: no CUDA backend"):
        _C.set_default_device("cuda")
    # nothing changed
    assert spore.get_context("device_target") == "CPU" and _C.default_device() == "cpu"
    assert ops.ones((2,)).device == "CPU"


def test_move_to():
    x = Tensor(np.arange(3, dtype=np.float32))
    y = x.move_to("CPU")
    assert y.device == "CPU" and np.array_equal(y.asnumpy(), [0, 1, 2])
    with pytest.raises(ValueError, match="'to' must be 'GPU' or 'CPU'"):
        x.move_to("Ascend")
    with pytest.raises(ValueError, match="blocking must be a bool"):
        x.move_to("CPU", blocking=1)
    if not HAVE_GPU:
        with pytest.raises(RuntimeError, match="not available"):
            x.move_to("GPU")


# ---- on a GPU -----------------------------------------------------------------------

class Mul(nn.Cell):
    def construct(self, x, y):
        return x * y


@needs_gpu
@pytest.mark.parametrize("mode", [spore.GRAPH_MODE, spore.PYNATIVE_MODE], ids=["graph", "pynative"])
def test_readme_example_on_gpu(mode, capsys):
    spore.set_context(mode=mode, device_target="GPU")
    assert _C.default_device() == "cuda:0"
    x = Tensor(np.array([1.0, 2.0, 3.0]).astype(np.float32))
    y = Tensor(np.array([4.0, 5.0, 6.0]).astype(np.float32))
    assert x.device == "GPU" and y.device == "GPU"
    out = Mul()(x, y)
    assert out.device == "GPU"
    print(out)
    assert capsys.readouterr().out == "[ 4. 10. 18.]\n"
    # host reads copy back: numpy, item, the buffer protocol (read-only)
    assert np.array_equal(np.asarray(out), [4, 10, 18]) and out.asnumpy().dtype == np.float32
    assert out[1].item() == 10.0 and float(out.sum()) == 32.0 and bool(out[0] == 4.0)
    m = memoryview(out)
    assert m.readonly and m.tolist() == [4.0, 10.0, 18.0]


class LeNet5(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, 10)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def _batches(n=5, b=8):
    rng = np.random.default_rng(7)
    return [(rng.standard_normal((b, 1, 32, 32)).astype(np.float32),
             rng.integers(0, 10, b).astype(np.int32)) for _ in range(n)]


def _train(target, mode, batches):
    """Losses and final parameters of 5 Momentum steps of a seeded LeNet-5
    built after set_context(device_target=target)."""
    spore.set_context(mode=mode, device_target=target)
    spore.set_seed(11)
    net = LeNet5()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    step.set_train()
    where = {p.device for p in net.trainable_params()}
    losses = [float(step(Tensor(x), Tensor(y)).asnumpy()) for x, y in batches]
    return losses, {p.name: p.asnumpy() for p in net.trainable_params()}, where


@needs_gpu
@pytest.mark.parametrize("mode", [spore.GRAPH_MODE, spore.PYNATIVE_MODE], ids=["graph", "pynative"])
def test_lenet_train_step_gpu_matches_cpu(mode):
    batches = _batches(1) * 5  # one batch five times: the loss must fall
    lc, pc, wc = _train("CPU", mode, batches)
    lg, pg, wg = _train("GPU", mode, batches)
    assert wc == {"CPU"} and wg == {"GPU"}
    assert np.allclose(lg, lc, rtol=1e-4, atol=1e-4), (lg, lc)
    assert lg[-1] < lg[0]  # it trains
    assert pc.keys() == pg.keys()
    for k in pc:
        assert np.allclose(pg[k], pc[k], rtol=1e-4, atol=1e-4), k


@needs_gpu
def test_parameters_made_on_the_cpu_move_at_the_first_graph_call():
    batches = _batches(3)
    spore.set_context(mode=spore.GRAPH_MODE, device_target="CPU")
    spore.set_seed(11)
    net = LeNet5()
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True,
                                                                                    reduction="mean")), opt)
    step.set_train()
    first = float(step(Tensor(batches[0][0]), Tensor(batches[0][1])).asnumpy())
    spore.set_context(device_target="GPU")
    second = float(step(Tensor(batches[1][0]), Tensor(batches[1][1])).asnumpy())
    assert {p.device for p in net.trainable_params()} == {"GPU"}
    lc, _, _ = _train("CPU", spore.GRAPH_MODE, batches[:2])
    assert np.allclose([first, second], lc, rtol=1e-4, atol=1e-4)


@needs_gpu
def test_model_train_on_gpu_with_numpy_slices():
    from spore.dataset import NumpySlicesDataset
    spore.set_context(mode=spore.GRAPH_MODE, device_target="GPU")
    spore.set_seed(3)
    x, y = zip(*_batches(4, 8))
    data = NumpySlicesDataset({"image": np.concatenate(x), "label": np.concatenate(y)}, shuffle=False).batch(8)
    net = LeNet5()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss, nn.Momentum(net.trainable_params(), 0.05, 0.9), metrics={"loss"})
    model.train(1, data)
    assert {p.device for p in net.trainable_params()} == {"GPU"}
    res = model.eval(data)
    assert np.isfinite(res["loss"])


@needs_gpu
def test_checkpoint_from_gpu_loads_on_cpu(tmp_path):
    spore.set_context(device_target="GPU")
    spore.set_seed(5)
    net = LeNet5()
    assert {p.device for p in net.trainable_params()} == {"GPU"}
    want = {p.name: p.asnumpy() for p in net.trainable_params()}
    f = os.path.join(tmp_path, "lenet.ckpt")
    save_checkpoint(net, f)
    spore.set_context(device_target="CPU")
    assert _C.default_device() == "cpu"
    cpu = LeNet5()
    assert {p.device for p in cpu.trainable_params()} == {"CPU"}
    load_param_into_net(cpu, load_checkpoint(f))
    for p in cpu.trainable_params():
        assert p.device == "CPU" and np.array_equal(p.asnumpy(), want[p.name]), p.name
    # and back into GPU parameters, in place
    spore.set_context(device_target="GPU")
    gpu = LeNet5()
    before = {p.name: id(p) for p in gpu.trainable_params()}
    load_param_into_net(gpu, load_checkpoint(f))
    for p in gpu.trainable_params():
        assert id(p) == before[p.name] and p.device == "GPU" and np.array_equal(p.asnumpy(), want[p.name])


@needs_gpu
def test_back_to_cpu():
    spore.set_context(device_target="GPU", device_id=0)
    g = ops.ones((2, 2))
    assert g.device == "GPU"
    spore.set_context(device_target="CPU")
    c = ops.ones((2, 2))
    assert c.device == "CPU" and _C.default_device() == "cpu"
    # a GPU tensor meets a CPU one only as a 0-d scalar now
    assert np.array_equal((g * Tensor(2.0)).asnumpy(), np.full((2, 2), 2.0))
    with pytest.raises(Exception, match="different devices"):
        g + c
    assert np.array_equal((g.move_to("CPU") + c).asnumpy(), np.full((2, 2), 2.0))
    with pytest.raises(ValueError, match="device_id"):
        spore.set_context(device_target="GPU", device_id="0")
