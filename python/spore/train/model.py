"""spore.train.Model: train, evaluate and predict with one object (MindSpore 2.x).

    model = Model(net, loss_fn, optimizer, metrics={"accuracy"})
    model.train(epochs, train_ds, callbacks=[LossMonitor()])
    model.eval(test_ds)            # {'accuracy': 0.9}
    model.predict(images)          # net(images)

Model builds three Cells from what it is given and only ever calls them:

* the train network: ``TrainOneStepCell(WithLossCell(net, loss_fn),
  optimizer)`` when both are given (``TrainOneStepCell(net, optimizer)``
  when net already computes the loss; ``WithLossCell(net, loss_fn)`` with
  no optimizer; net itself when neither).  One call is one training step:
  in GRAPH_MODE forward, gradient and update compile to one graph, so a
  step costs one compiled call from Python whatever the network;
* the eval network: ``WithEvalCell(net, loss_fn)`` giving (loss, logits,
  label), or the user's eval_network with eval_indexes saying which of its
  outputs are the loss, the logits and the label;
* the predict network: net.

The loop around them is plain Python on purpose: per step it fetches one
tuple of tensors from the dataset iterator (the pipeline runs in C
threads), calls the train network once, and runs the callbacks' hooks.
Nothing per step reads a tensor back unless a callback asks for it (the
loss is read only by a monitor on the steps it prints), so the loop adds a
few microseconds to a step and never a device sync.

A dataset is anything with MindSpore's iterator protocol:
``get_dataset_size()`` (batches per epoch) and
``create_tuple_iterator(num_epochs=n)``, an iterator over the batches that
can be looped over once per epoch, n times; each batch is a tuple of
Tensors, the network's inputs followed by the label.

Switching between training and evaluation flips ``set_train`` only when a
cell's mode actually differs, because changing it drops compiled graphs.
"""
from spore import context
from spore.nn.cell import Cell
from spore.train.metrics import Loss, get_metrics
from spore.train.callback.callbacks import RunContext, _CallbackList, _Params, _ProgressBar

__all__ = ["Model"]


def _nn():
    import spore.nn as nn
    return nn


def _set_mode(cell, training):
    """set_train(training) unless every cell already is in that mode (which
    would drop compiled graphs for nothing)."""
    if any(c.training != training for _, c in cell.cells_and_names()):
        cell.set_train(training)


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"Model: {name} must be an int >= {lo}, not {v!r}")


def _as_tuple(batch):
    if isinstance(batch, dict):
        return tuple(batch.values())
    if isinstance(batch, (tuple, list)):
        return tuple(batch)
    return (batch,)


def _epoch_iterator(dataset, num_epochs, what):
    for name in ("create_tuple_iterator", "get_dataset_size"):
        if not callable(getattr(dataset, name, None)):
            raise TypeError(f"Model.{what}: the dataset must have {name}() (a spore.dataset Dataset), "
                            f"not {type(dataset).__name__}")
    return dataset.create_tuple_iterator(num_epochs=num_epochs)


class Model:
    """Model(network, loss_fn=None, optimizer=None, metrics=None,
    eval_network=None, eval_indexes=None, amp_level="O0", boost_level="O0")."""

    def __init__(self, network, loss_fn=None, optimizer=None, metrics=None, eval_network=None,
                 eval_indexes=None, amp_level="O0", boost_level="O0", **kwargs):
        if not isinstance(network, Cell):
            raise TypeError(f"Model: network must be a Cell, not {type(network).__name__}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"Model: loss_fn must be a Cell or callable, not {type(loss_fn).__name__}")
        if optimizer is not None and not isinstance(optimizer, Cell):
            raise TypeError(f"Model: optimizer must be an nn.Optimizer, not {type(optimizer).__name__}")
        if eval_network is not None and not isinstance(eval_network, Cell):
            raise TypeError(f"Model: eval_network must be a Cell, not {type(eval_network).__name__}")
        if amp_level not in ("O0", "auto"):
            raise ValueError(f"Model: amp_level {amp_level!r} is not supported: Spore's Model trains in the "
                             f"network's own precision ('O0')")
        if boost_level != "O0":
            raise ValueError(f"Model: boost_level {boost_level!r} is not supported (only 'O0')")
        if kwargs.get("loss_scale_manager") is not None:
            raise ValueError("Model: loss_scale_manager is not supported (amp_level 'O0' needs none)")
        unknown = set(kwargs) - {"loss_scale_manager", "keep_batchnorm_fp32"}
        if unknown:
            raise TypeError(f"Model: unexpected keyword argument(s) {', '.join(sorted(unknown))}")
        self._network = network
        self._loss_fn = loss_fn
        self._optimizer = optimizer
        self._amp_level = amp_level
        self._metric_fns = get_metrics(metrics)
        self._train_network = self._build_train_network()
        self._eval_network = None
        self._eval_indexes = None
        self._build_eval_network(eval_network, eval_indexes)
        self._predict_network = network

    # ---- the three networks ----
    def _build_train_network(self):
        nn = _nn()
        if self._optimizer is not None:
            net = nn.WithLossCell(self._network, self._loss_fn) if self._loss_fn is not None else self._network
            return nn.TrainOneStepCell(net, self._optimizer)
        if self._loss_fn is not None:
            return nn.WithLossCell(self._network, self._loss_fn)
        return self._network

    def _build_eval_network(self, eval_network, eval_indexes):
        if eval_network is not None:
            if eval_indexes is not None and not (isinstance(eval_indexes, list) and len(eval_indexes) == 3
                                                 and all(isinstance(i, int) for i in eval_indexes)):
                raise ValueError(f"Model: eval_indexes must be a list of 3 ints (loss, logits, label), "
                                 f"not {eval_indexes!r}")
            self._eval_network = eval_network
            self._eval_indexes = eval_indexes
        elif self._metric_fns is not None:
            if self._loss_fn is None:
                raise ValueError("Model: metrics need either loss_fn (to build nn.WithEvalCell) or an "
                                 "eval_network; do not set metrics if you don't want an evaluation")
            self._eval_network = _nn().WithEvalCell(self._network, self._loss_fn)
            self._eval_indexes = [0, 1, 2]

    @property
    def train_network(self):
        """The Cell one training step calls."""
        return self._train_network

    @property
    def eval_network(self):
        """The Cell evaluation calls (None without metrics)."""
        return self._eval_network

    @property
    def predict_network(self):
        """The Cell predict calls (the network)."""
        return self._predict_network

    # ---- training ----
    def _params(self, epoch, dataset, callbacks, mode):
        cb = _Params()
        cb.network = self._network
        cb.train_network = self._train_network
        cb.eval_network = self._eval_network
        cb.loss_fn = self._loss_fn
        cb.optimizer = self._optimizer
        cb.epoch_num = epoch
        cb.batch_num = dataset.get_dataset_size()
        cb.cur_epoch_num = 0
        cb.cur_step_num = 0
        cb.net_outputs = None
        cb.mode = mode
        cb.dataset_sink_mode = False
        cb.parallel_mode = "stand_alone"
        cb.device_number = 1
        cb.list_callback = callbacks.callbacks
        cb.metrics = None
        if mode == "train":
            cb.train_dataset = dataset
        else:
            cb.valid_dataset = dataset
        return cb

    def train(self, epoch, train_dataset, callbacks=None, dataset_sink_mode=False, sink_size=-1, initial_epoch=0):
        """Train for epochs initial_epoch+1 .. epoch over train_dataset,
        calling the callbacks' hooks.  dataset_sink_mode is accepted and
        ignored (on the CPU MindSpore ignores it too)."""
        self._train(epoch, train_dataset, callbacks, initial_epoch, None)

    def fit(self, epoch, train_dataset, valid_dataset=None, valid_frequency=1, callbacks=None,
            dataset_sink_mode=False, valid_dataset_sink_mode=False, sink_size=-1, initial_epoch=0):
        """train(), evaluating on valid_dataset after every valid_frequency-th
        epoch (an int, or a list of epoch numbers); the results are in
        cb_params.metrics when on_train_epoch_end runs (LossMonitor prints
        them)."""
        if valid_dataset is None:
            return self._train(epoch, train_dataset, callbacks, initial_epoch, None)
        if self._eval_network is None:
            raise ValueError("Model.fit: a valid_dataset needs metrics (and a loss_fn or eval_network)")
        if isinstance(valid_frequency, list):
            wanted = set(valid_frequency)
            due = lambda e: e in wanted  # noqa: E731
        else:
            _check_int("valid_frequency", valid_frequency, 1)
            due = lambda e: e % valid_frequency == 0 or e == epoch  # noqa: E731

        def validate(cb, cbs):
            if due(cb.cur_epoch_num):
                cb.metrics = self._eval(valid_dataset, cbs)
            else:
                cb.metrics = None
        return self._train(epoch, train_dataset, callbacks, initial_epoch, validate)

    def _train(self, epoch, dataset, callbacks, initial_epoch, after_epoch):
        _check_int("epoch", epoch, 1)
        _check_int("initial_epoch", initial_epoch, 0)
        if initial_epoch >= epoch:
            raise ValueError(f"Model.train: initial_epoch ({initial_epoch}) must be less than epoch ({epoch})")
        cbs = _CallbackList(callbacks)
        if _ProgressBar.wanted() and not any(isinstance(c, _ProgressBar) for c in cbs.callbacks):
            cbs.callbacks.insert(0, _ProgressBar())
        it = _epoch_iterator(dataset, epoch - initial_epoch, "train")
        cb = self._params(epoch, dataset, cbs, "train")
        cb.cur_epoch_num = initial_epoch
        cb.cur_step_num = initial_epoch * cb.batch_num
        run = RunContext(cb)
        net = self._train_network
        _set_mode(net, True)
        cbs("on_train_begin", run)
        for e in range(initial_epoch + 1, epoch + 1):
            cb.cur_epoch_num = e
            cb.epoch_steps = 0
            cbs("on_train_epoch_begin", run)
            for batch in it:
                cb.cur_step_num += 1
                cb.epoch_steps += 1
                cbs("on_train_step_begin", run)
                cb.net_outputs = net(*_as_tuple(batch))
                cbs("on_train_step_end", run)
                if run.get_stop_requested():
                    break
            if after_epoch is not None:
                after_epoch(cb, cbs)
                cb.mode = "train"
                _set_mode(net, True)
            cbs("on_train_epoch_end", run)
            if run.get_stop_requested():
                break
        if callable(getattr(it, "stop", None)):
            it.stop()                      # a stopped run leaves no pipeline threads behind
        cbs("on_train_end", run)

    # ---- evaluation and prediction ----
    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode=False):
        """The metrics over valid_dataset: {name: value}."""
        if self._eval_network is None:
            raise ValueError("Model.eval needs metrics: Model(..., metrics={'accuracy'})")
        return self._eval(valid_dataset, _CallbackList(callbacks))

    def _eval(self, dataset, cbs):
        it = _epoch_iterator(dataset, 1, "eval")
        cb = self._params(1, dataset, cbs, "eval")
        cb.cur_epoch_num = 1
        run = RunContext(cb)
        net = self._eval_network
        _set_mode(net, False)
        for m in self._metric_fns.values():
            m.clear()
        cbs("on_eval_begin", run)
        cbs("on_eval_epoch_begin", run)
        for batch in it:
            cb.cur_step_num += 1
            cbs("on_eval_step_begin", run)
            outputs = net(*_as_tuple(batch))
            cb.net_outputs = outputs
            self._update_metrics(outputs)
            cbs("on_eval_step_end", run)
        cbs("on_eval_epoch_end", run)
        cb.metrics = {name: m.eval() for name, m in self._metric_fns.items()}
        cbs("on_eval_end", run)
        return cb.metrics

    def _update_metrics(self, outputs):
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        idx = self._eval_indexes
        if idx is not None and len(outputs) != 3:
            raise ValueError(f"Model.eval: the eval network must return (loss, logits, label), "
                             f"it returned {len(outputs)} value(s)")
        for m in self._metric_fns.values():
            if m.indexes is not None:
                m.update(*(outputs[i] for i in m.indexes))
            elif idx is None:
                m.update(*outputs)
            elif isinstance(m, Loss):
                m.update(outputs[idx[0]])
            else:
                m.update(outputs[idx[1]], outputs[idx[2]])

    def predict(self, *predict_data, backend=None, config=None):
        """The network's output on predict_data (in inference mode)."""
        if not predict_data:
            raise ValueError("Model.predict needs at least one input")
        _set_mode(self._predict_network, False)
        return self._predict_network(*predict_data)

    def infer_train_layout(self, *args, **kwargs):
        raise NotImplementedError("Model.infer_train_layout: Spore's Model runs stand-alone")

    def __repr__(self):
        mode = "GRAPH_MODE" if context.get_context("mode") == context.GRAPH_MODE else "PYNATIVE_MODE"
        return (f"Model(network={type(self._network).__name__}, loss_fn={type(self._loss_fn).__name__}, "
                f"optimizer={type(self._optimizer).__name__}, metrics={sorted(self._metric_fns or [])}, {mode})")
