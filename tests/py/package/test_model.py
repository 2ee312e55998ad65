"""spore.train: Model, metrics and callbacks (MindSpore 2.x semantics).

The loop tests drive Model with a small dataset class of their own (numpy
arrays behind MindSpore's iterator protocol) and with networks built from
Parameters and spore.ops, so they check Model's own logic -- the order of
the hooks, cb_params, stopping, resuming, metric plumbing -- independently
of the layers and optimizers.  The end-to-end tests at the bottom use
nn.Dense, the losses, the optimizers and the wrappers, in both modes.
"""
import os

import numpy as np
import pytest

import spore
from spore import Tensor, Parameter, nn, ops
from spore.train import (Model, Callback, RunContext, LossMonitor, TimeMonitor, ModelCheckpoint,
                         CheckpointConfig, Accuracy, Loss, Top1CategoricalAccuracy, Top5CategoricalAccuracy,
                         TopKCategoricalAccuracy, History, LambdaCallback)
from spore.train.metrics import get_metrics


# ---------------------------------------------------------------------------
class ArrayDataset:
    """Batches of (x, y) over numpy arrays with MindSpore's iterator protocol:
    create_tuple_iterator(num_epochs) can be looped over once per epoch."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.bs = x, y, batch_size
        self.iterators = 0

    def get_dataset_size(self):
        return (len(self.x) + self.bs - 1) // self.bs

    def create_tuple_iterator(self, num_epochs=-1, **kw):
        self.iterators += 1
        ds = self

        class It:
            def __init__(self):
                self.epochs_left = num_epochs

            def __iter__(self):
                if self.epochs_left == 0:
                    raise RuntimeError("iterator used for more epochs than num_epochs")
                self.epochs_left -= 1
                for i in range(0, len(ds.x), ds.bs):
                    yield Tensor(ds.x[i:i + ds.bs]), Tensor(ds.y[i:i + ds.bs])
        return It()


def blobs(n, seed=0, classes=3, dim=4):
    """Linearly separable classes around distinct centres."""
    centres = np.random.default_rng(100).normal(0, 3, (classes, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    x = (centres[y] + rng.normal(0, 0.5, (n, dim))).astype(np.float32)
    return x, y


class Linear(spore.nn.Cell):
    def __init__(self, dim=4, classes=3):
        super().__init__()
        self.w = Parameter(Tensor(np.zeros((dim, classes), np.float32)), name="w")
        self.b = Parameter(Tensor(np.zeros((classes,), np.float32)), name="b")

    def construct(self, x):
        return ops.matmul(x, self.w) + self.b


def _loss(x, y, w, b):
    return ops.cross_entropy(ops.matmul(x, w) + b, y)


class ManualTrainStep(spore.nn.Cell):
    """One SGD step on a Linear through the functional gradient (PYNATIVE_MODE
    only: it assigns Parameters from Python)."""

    def __init__(self, net, lr=0.5):
        super().__init__()
        self.net = net
        self.lr = lr
        self.g = spore.value_and_grad(_loss, grad_position=(2, 3))

    def construct(self, x, y):
        loss, (gw, gb) = self.g(x, y, self.net.w, self.net.b)
        self.net.w.set_data(self.net.w - gw * self.lr)
        self.net.b.set_data(self.net.b - gb * self.lr)
        return loss


class EvalCell(spore.nn.Cell):
    """(label, logits, loss): the outputs in an unusual order, for eval_indexes."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, y):
        logits = self.net(x)
        return y, logits, ops.cross_entropy(logits, y)


class Recorder(Callback):
    """Records every hook with the step/epoch numbers it saw."""

    def __init__(self):
        self.calls = []

    def _rec(name):
        def hook(self, rc):
            cb = rc.original_args()
            self.calls.append((name, cb.cur_epoch_num, cb.cur_step_num))
        return hook

    for _h in ("on_train_begin", "on_train_epoch_begin", "on_train_step_begin", "on_train_step_end",
               "on_train_epoch_end", "on_train_end", "on_eval_begin", "on_eval_epoch_begin", "on_eval_step_begin",
               "on_eval_step_end", "on_eval_epoch_end", "on_eval_end"):
        locals()[_h] = _rec(_h)
    del _h


# ---------------------------------------------------------------------------
# metrics
def test_accuracy_indices_and_onehot():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(50, 7)).astype(np.float32)
    y = rng.integers(0, 7, 50).astype(np.int32)
    want = float(np.mean(p.argmax(1) == y))
    m = Accuracy()
    m.update(Tensor(p[:20]), Tensor(y[:20]))
    m.update(p[20:], y[20:])  # numpy inputs too
    assert m.eval() == pytest.approx(want)
    onehot = np.eye(7, dtype=np.float32)[y]
    assert Accuracy()(p, onehot) == pytest.approx(want)
    m.clear()
    with pytest.raises(RuntimeError, match="no samples"):
        m.eval()
    with pytest.raises(ValueError, match="do not fit"):
        Accuracy().update(p, y[:10])


def test_accuracy_multilabel():
    p = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.1], [0.6, 0.6, 0.4]], np.float32)
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], np.float32)
    assert Accuracy("multilabel")(p, y) == pytest.approx(2 / 3)


def test_topk_accuracy():
    rng = np.random.default_rng(2)
    p = rng.normal(size=(64, 10)).astype(np.float32)
    y = rng.integers(0, 10, 64).astype(np.int64)
    top5 = np.argsort(-p, 1)[:, :5]
    want5 = float(np.mean([y[i] in top5[i] for i in range(64)]))
    assert Top5CategoricalAccuracy()(p, y) == pytest.approx(want5)
    assert Top1CategoricalAccuracy()(p, y) == pytest.approx(float(np.mean(p.argmax(1) == y)))
    assert TopKCategoricalAccuracy(10)(p, y) == 1.0
    with pytest.raises(ValueError):
        TopKCategoricalAccuracy(0)
    with pytest.raises(ValueError, match="C >= 5"):
        Top5CategoricalAccuracy().update(p[:, :3], y)


def test_loss_metric_and_names():
    m = Loss()
    m.update(Tensor(np.float32(2.0)))
    m.update(np.array([1.0, 3.0, 5.0], np.float32))
    assert m.eval() == pytest.approx((2.0 + 3.0) / 2)
    ms = get_metrics({"accuracy", "loss", "top_5_accuracy"})
    assert isinstance(ms["accuracy"], Accuracy) and isinstance(ms["loss"], Loss)
    with pytest.raises(KeyError, match="unknown metric"):
        get_metrics({"acc"})
    with pytest.raises(TypeError):
        get_metrics({"a": 1})


# ---------------------------------------------------------------------------
# Model's loop, with networks of its own
def test_train_hooks_order_and_params():
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(10)
    ds = ArrayDataset(x, y, 4)                       # 3 steps an epoch (4, 4, 2)
    net = Linear()
    rec = Recorder()
    model = Model(ManualTrainStep(net))
    model.train(2, ds, callbacks=[rec])
    assert ds.iterators == 1                         # one iterator for every epoch
    names = [c[0] for c in rec.calls]
    assert names[0] == "on_train_begin" and names[-1] == "on_train_end"
    assert names.count("on_train_step_end") == 6 and names.count("on_train_epoch_end") == 2
    ends = [c for c in rec.calls if c[0] == "on_train_step_end"]
    assert [(e, s) for _, e, s in ends] == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6)]
    assert names[1:5] == ["on_train_epoch_begin", "on_train_step_begin", "on_train_step_end",
                          "on_train_step_begin"]
    assert ("on_train_epoch_end", 1, 3) in rec.calls and ("on_train_epoch_end", 2, 6) in rec.calls


def test_train_learns_and_old_hook_names():
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(96, seed=3)
    ds = ArrayDataset(x, y, 16)
    net = Linear()
    seen = []

    class Old(Callback):  # the 1.x names still run under the 2.x hooks
        def begin(self, rc):
            seen.append("begin")

        def epoch_end(self, rc):
            cb = rc.original_args()
            seen.append(float(cb.net_outputs.asnumpy()))

        def end(self, rc):
            seen.append("end")
    model = Model(ManualTrainStep(net))
    model.train(3, ds, callbacks=Old())
    assert seen[0] == "begin" and seen[-1] == "end" and len(seen) == 5
    assert seen[1] < np.log(3) and seen[3] < seen[1]
    assert model.predict_network is model.train_network       # no loss_fn/optimizer: net is the step
    logits = Model(net).predict(Tensor(x)).asnumpy()
    assert np.mean(logits.argmax(1) == y) > 0.95


def test_request_stop_and_initial_epoch():
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(20)
    ds = ArrayDataset(x, y, 5)                       # 4 steps an epoch

    class StopAt(Callback):
        def __init__(self):
            self.steps = []

        def on_train_step_end(self, rc):
            self.steps.append(rc.original_args().cur_step_num)
            if rc.original_args().cur_step_num == 6:
                rc.request_stop()
    s = StopAt()
    Model(ManualTrainStep(Linear())).train(5, ds, callbacks=[s])
    assert s.steps == [1, 2, 3, 4, 5, 6]
    rec = Recorder()
    Model(ManualTrainStep(Linear())).train(3, ds, callbacks=rec, initial_epoch=1)
    ends = [(e, st) for n, e, st in rec.calls if n == "on_train_step_end"]
    assert ends[0] == (2, 5) and ends[-1] == (3, 12) and len(ends) == 8
    with pytest.raises(ValueError, match="initial_epoch"):
        Model(Linear()).train(2, ds, initial_epoch=2)
    with pytest.raises(ValueError, match="epoch"):
        Model(Linear()).train(0, ds)
    with pytest.raises(TypeError, match="Callback"):
        Model(Linear()).train(1, ds, callbacks=[object()])
    with pytest.raises(TypeError, match="create_tuple_iterator"):
        Model(Linear()).train(1, [1, 2, 3])


def test_eval_with_eval_indexes():
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(40, seed=5)
    net = Linear()
    rng = np.random.default_rng(0)
    net.w.set_data(Tensor(rng.normal(size=(4, 3)).astype(np.float32)))
    model = Model(net, eval_network=EvalCell(net), eval_indexes=[2, 1, 0],
                  metrics={"accuracy", "loss", "top_1_accuracy"})
    rec = Recorder()
    res = model.eval(ArrayDataset(x, y, 16), callbacks=[rec])
    logits = x @ net.w.asnumpy() + net.b.asnumpy()
    assert res["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == y)))
    assert res["top_1_accuracy"] == pytest.approx(res["accuracy"])
    # Loss: the mean over batches of each batch's mean loss
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    per = lse - logits[np.arange(40), y]
    want = np.mean([per[0:16].mean(), per[16:32].mean(), per[32:40].mean()])
    assert res["loss"] == pytest.approx(float(want), rel=1e-5)
    names = [c[0] for c in rec.calls]
    assert names[:2] == ["on_eval_begin", "on_eval_epoch_begin"] and names[-1] == "on_eval_end"
    assert names.count("on_eval_step_end") == 3
    with pytest.raises(ValueError, match="eval_indexes"):
        Model(net, eval_network=EvalCell(net), eval_indexes=[0, 1])
    with pytest.raises(ValueError, match="needs metrics"):
        Model(net).eval(ArrayDataset(x, y, 16))
    with pytest.raises(ValueError, match="loss_fn"):
        Model(net, metrics={"accuracy"})


def test_model_argument_errors():
    with pytest.raises(TypeError, match="Cell"):
        Model(lambda x: x)
    with pytest.raises(ValueError, match="amp_level"):
        Model(Linear(), amp_level="O2")
    with pytest.raises(TypeError, match="unexpected"):
        Model(Linear(), bogus=1)


# ---------------------------------------------------------------------------
# callbacks
def _cb_params(step, batch_num=10, epoch=1, loss=0.25):
    from spore.train.callback.callbacks import _Params
    p = _Params(cur_step_num=step, batch_num=batch_num, cur_epoch_num=epoch, epoch_num=3,
                net_outputs=Tensor(np.float32(loss)), mode="train")
    return RunContext(p)


def test_loss_monitor_prints_every_n(capsys):
    lm = LossMonitor(per_print_times=4)
    lm.on_train_begin(_cb_params(0))
    for s in range(1, 11):
        lm.on_train_step_end(_cb_params(s))
    out = capsys.readouterr().out.splitlines()
    assert out == ["epoch: 1 step: 4, loss is 0.25", "epoch: 1 step: 8, loss is 0.25"]
    with pytest.raises(ValueError, match="Invalid loss"):
        LossMonitor().on_train_step_end(_cb_params(1, loss=float("nan")))
    with pytest.raises(ValueError):
        LossMonitor(-1)


def test_time_monitor_and_history(capsys):
    tm = TimeMonitor(data_size=5)
    rc = _cb_params(5)
    tm.on_train_epoch_begin(rc)
    tm.on_train_epoch_end(rc)
    out = capsys.readouterr().out
    assert out.startswith("epoch time: ") and "per step time: " in out
    h = History()
    h.on_train_begin(rc)
    h.on_train_epoch_end(_cb_params(10, loss=0.5))
    assert h.epoch == [1] and h.history["net_output"] == [0.5]
    got = []
    LambdaCallback(on_train_step_end=lambda rc: got.append(rc.original_args().cur_step_num)).on_train_step_end(rc)
    assert got == [5]


def test_checkpoint_config_rules():
    c = CheckpointConfig(save_checkpoint_steps=10, save_checkpoint_seconds=30, keep_checkpoint_max=0,
                         keep_checkpoint_per_n_minutes=0)
    assert c.save_checkpoint_steps == 10 and c.save_checkpoint_seconds is None and c.keep_checkpoint_max == 1
    with pytest.raises(ValueError, match="both"):
        CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=0)
    with pytest.raises(ValueError):
        CheckpointConfig(save_checkpoint_steps=-1)
    with pytest.raises(TypeError):
        ModelCheckpoint(config={"save_checkpoint_steps": 1})


def test_model_checkpoint_files(tmp_path):
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(20)
    ds = ArrayDataset(x, y, 5)                       # 4 steps an epoch
    net = Linear()
    ck = ModelCheckpoint(prefix="lin", directory=str(tmp_path),
                         config=CheckpointConfig(save_checkpoint_steps=3, keep_checkpoint_max=2))
    Model(ManualTrainStep(net)).train(2, ds, callbacks=[ck])
    # saves at steps 3 and 6, then at the end (step 8); the oldest goes
    assert sorted(os.listdir(tmp_path)) == ["lin-2_2.ckpt", "lin-2_4.ckpt"]
    assert ck.latest_ckpt_file_name == str(tmp_path / "lin-2_4.ckpt")
    params = spore.train.load_checkpoint(ck.latest_ckpt_file_name)
    np.testing.assert_array_equal(params["net.w"].asnumpy(), net.w.asnumpy())   # auto_prefix: the step cell holds net
    from safetensors.numpy import load_file
    np.testing.assert_array_equal(load_file(ck.latest_ckpt_file_name)["net.b"], net.b.asnumpy())
    # a second run into the same folder takes the next free prefix
    ck2 = ModelCheckpoint(prefix="lin", directory=str(tmp_path), config=CheckpointConfig(save_checkpoint_steps=4))
    Model(ManualTrainStep(net)).train(1, ds, callbacks=ck2)
    assert os.path.basename(ck2.latest_ckpt_file_name) == "lin_1-1_4.ckpt"


# ---------------------------------------------------------------------------
# the whole stack: nn layers, loss, optimizer, wrappers, in both modes
class Mlp(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 3)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def test_model_train_eval_predict_stack(mode, tmp_path):
    spore.set_seed(1)
    x, y = blobs(256, seed=7)
    xt, yt = blobs(128, seed=8)
    net = Mlp()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.02, momentum=0.9)
    model = Model(net, loss, opt, metrics={"accuracy", "loss"})
    before = model.eval(ArrayDataset(xt, yt, 32))
    hist = History()
    model.fit(4, ArrayDataset(x, y, 32), ArrayDataset(xt, yt, 32), callbacks=[hist])
    after = hist.history["accuracy"][-1]
    assert len(hist.history["accuracy"]) == 4
    assert hist.history["loss"][-1] < before["loss"] * 0.1
    assert after > 0.95 and after > before["accuracy"]
    res = model.eval(ArrayDataset(xt, yt, 32))
    assert res["accuracy"] == pytest.approx(after)
    logits = model.predict(Tensor(xt)).asnumpy()
    assert np.mean(logits.argmax(1) == yt) == pytest.approx(res["accuracy"])


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    import io
    import sys as _sys
    from spore.train.callback.callbacks import _ProgressBar
    spore.set_context(mode=spore.PYNATIVE_MODE)
    x, y = blobs(40)
    model = Model(ManualTrainStep(Linear()))
    model.train(1, ArrayDataset(x, y, 8))            # pytest's stdout is no terminal: quiet
    assert capsys.readouterr().out == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    monkeypatch.setattr(_sys, "stdout", tty)
    monkeypatch.setenv("SPORE_PROGRESS", "1")
    model.train(2, ArrayDataset(x, y, 8), callbacks=[LossMonitor(5)])
    out = tty.getvalue()
    lines = out.split("\n")
    # each epoch ends with one finished bar line; the loss lines are not overwritten
    finished = [ln.split("\r\033[K")[-1] for ln in lines if "5/5" in ln and "s" in ln]
    assert len(finished) == 2 and finished[0].startswith("epoch 1/2 [" + "=" * 30 + "] 5/5  loss ")
    assert "epoch: 1 step: 5, loss is " in out and "epoch: 2 step: 5, loss is " in out
    monkeypatch.setenv("SPORE_PROGRESS", "0")
    assert not _ProgressBar.wanted()
