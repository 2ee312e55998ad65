"""spore.train metrics: what Model.eval reports (MindSpore 2.x's names).

A metric is a small accumulator with three methods: ``clear()`` forgets
what it has seen, ``update(*inputs)`` adds one batch, ``eval()`` gives the
value over every batch since the last clear.  ``metric(*inputs)`` is clear,
update and eval of one batch.  Model.eval clears each metric, feeds it the
outputs of the eval network batch by batch, and returns ``{name: eval()}``.

The per-batch arithmetic (argmax, top-k, compare, count) runs in C through
spore.ops on the batch's tensors; what stays in Python is two running
integers (or one running float sum for Loss) per metric, so a batch costs a
few primitive calls whatever its size.  Inputs may be spore Tensors or
anything Tensor() accepts (numpy arrays, lists), as in MindSpore.

Labels are class indices of shape (N,) or one-hot rows of shape (N, C), the
latter recognised as MindSpore does (same rank as the prediction, every
entry 0 or 1, one 1 per row).  Ties in a prediction row go to the lowest
class index (ops.argmax's rule, numpy's too).  ``eval()`` before any
``update()`` raises RuntimeError, as MindSpore's does, rather than give 0.
"""
import math

from spore import ops
from spore.common.tensor import Tensor
from spore.common import dtype as mstype

__all__ = ["Metric", "Accuracy", "Loss", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy",
           "Top5CategoricalAccuracy", "MAE", "MSE", "get_metric_fn", "get_metrics", "names"]


def _tensor(x, what):
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except Exception as e:  # noqa: BLE001 -- any conversion failure is the user's input
        raise TypeError(f"{what} must be a Tensor, a numpy array or a list, not {type(x).__name__} ({e})") from None


def _labels(y_pred, y, name):
    """Class indices (N,) for labels y that are indices or one-hot rows."""
    if y.ndim == y_pred.ndim and y.ndim >= 2 and y.shape == y_pred.shape:
        return ops.argmax(y, 1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or y.shape[0] != y_pred.shape[0]:
        raise ValueError(f"{name}: labels of shape {tuple(y.shape)} do not fit predictions of shape "
                         f"{tuple(y_pred.shape)}: expected ({y_pred.shape[0]},) class indices or "
                         f"{tuple(y_pred.shape)} one-hot rows")
    return y


class Metric:
    """Base class: subclasses define clear(), update(*inputs) and eval()."""

    def __init__(self):
        self._indexes = None

    @property
    def indexes(self):
        """Which outputs of the eval network this metric takes (set_indexes)."""
        return self._indexes

    def set_indexes(self, indexes):
        """Take the eval network's outputs at these positions (a list of ints)."""
        if not isinstance(indexes, list) or not all(isinstance(i, int) for i in indexes):
            raise ValueError(f"set_indexes takes a list of ints, not {indexes!r}")
        self._indexes = indexes
        return self

    def __call__(self, *inputs):
        self.clear()
        self.update(*inputs)
        return self.eval()

    def clear(self):
        raise NotImplementedError(f"{type(self).__name__} must define clear()")

    def update(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def eval(self):
        raise NotImplementedError(f"{type(self).__name__} must define eval()")

    def _empty(self):
        raise RuntimeError(f"{type(self).__name__} can not be calculated: it has seen no samples "
                           f"(call update() before eval())")


class Accuracy(Metric):
    """Accuracy(eval_type='classification'): the fraction of samples whose
    highest-scoring class is the label.  eval_type='multilabel': the
    fraction of samples whose every 0/1 prediction equals the label row."""

    def __init__(self, eval_type="classification"):
        super().__init__()
        if eval_type not in ("classification", "multilabel"):
            raise ValueError(f"Accuracy: eval_type must be 'classification' or 'multilabel', not {eval_type!r}")
        self._type = eval_type
        self.clear()

    def clear(self):
        self._correct_num = 0
        self._total_num = 0

    def update(self, *inputs):
        """update(y_pred, y): y_pred (N, C) scores; y (N,) indices or (N, C) one-hot."""
        if len(inputs) != 2:
            raise ValueError(f"Accuracy.update takes (y_pred, y), not {len(inputs)} inputs")
        y_pred = _tensor(inputs[0], "Accuracy: y_pred")
        y = _tensor(inputs[1], "Accuracy: y")
        if self._type == "multilabel":
            if y_pred.shape != y.shape or y.ndim != 2:
                raise ValueError(f"Accuracy(multilabel): y_pred {tuple(y_pred.shape)} and y {tuple(y.shape)} "
                                 f"must be the same (N, C)")
            same = ops.equal(ops.round(y_pred.astype(mstype.float32)), y.astype(mstype.float32))
            correct = ops.all(same, 1).astype(mstype.int64).sum().item()
        else:
            if y_pred.ndim != 2:
                raise ValueError(f"Accuracy: y_pred must be (N, C) class scores, not shape {tuple(y_pred.shape)}")
            y = _labels(y_pred, y, "Accuracy")
            correct = ops.equal(ops.argmax(y_pred, 1), y.astype(mstype.int64)).astype(mstype.int64).sum().item()
        self._correct_num += int(correct)
        self._total_num += int(y_pred.shape[0])

    def eval(self):
        if self._total_num == 0:
            self._empty()
        return self._correct_num / self._total_num


class TopKCategoricalAccuracy(Metric):
    """The fraction of samples whose label is among the k highest scores."""

    def __init__(self, k):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKCategoricalAccuracy: k must be a positive int, not {k!r}")
        self.k = k
        self.clear()

    def clear(self):
        self._correct_num = 0
        self._samples_num = 0

    def update(self, *inputs):
        """update(y_pred, y): y_pred (N, C) scores with C >= k; y indices or one-hot."""
        if len(inputs) != 2:
            raise ValueError(f"{type(self).__name__}.update takes (y_pred, y), not {len(inputs)} inputs")
        y_pred = _tensor(inputs[0], "y_pred")
        y = _tensor(inputs[1], "y")
        if y_pred.ndim != 2 or y_pred.shape[1] < self.k:
            raise ValueError(f"{type(self).__name__}: y_pred must be (N, C) with C >= {self.k}, "
                             f"not shape {tuple(y_pred.shape)}")
        y = _labels(y_pred, y, type(self).__name__).astype(mstype.int64)
        _, top = ops.topk(y_pred, self.k, 1)
        hit = ops.any(ops.equal(top, y.reshape(-1, 1)), 1)
        self._correct_num += int(hit.astype(mstype.int64).sum().item())
        self._samples_num += int(y_pred.shape[0])

    def eval(self):
        if self._samples_num == 0:
            self._empty()
        return self._correct_num / self._samples_num


class Top1CategoricalAccuracy(TopKCategoricalAccuracy):
    """Top-1 accuracy (the same value as Accuracy, up to ties)."""

    def __init__(self):
        super().__init__(1)


class Top5CategoricalAccuracy(TopKCategoricalAccuracy):
    """Top-5 accuracy."""

    def __init__(self):
        super().__init__(5)


class Loss(Metric):
    """The mean over batches of the loss the eval network returns."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._sum_loss = 0.0
        self._total_num = 0

    def update(self, *inputs):
        """update(loss): a scalar or 1-D loss tensor (its mean counts once)."""
        if len(inputs) != 1:
            raise ValueError(f"Loss.update takes one input (the loss), not {len(inputs)}")
        loss = _tensor(inputs[0], "Loss: loss")
        if loss.ndim > 1:
            raise ValueError(f"Loss: the loss must be a scalar or 1-D, not shape {tuple(loss.shape)}")
        self._sum_loss += float(loss.astype(mstype.float32).mean().item())
        self._total_num += 1

    def eval(self):
        if self._total_num == 0:
            self._empty()
        return self._sum_loss / self._total_num


class _ErrorMetric(Metric):
    """Mean over samples of an elementwise error, summed per sample."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._abs_error_sum = 0.0
        self._samples_num = 0

    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"{type(self).__name__}.update takes (y_pred, y), not {len(inputs)} inputs")
        y_pred = _tensor(inputs[0], "y_pred").astype(mstype.float32)
        y = _tensor(inputs[1], "y").astype(mstype.float32)
        if y.shape != y_pred.shape:
            y = y.reshape(y_pred.shape) if math.prod(y.shape) == math.prod(y_pred.shape) else y
        diff = self._error(ops.sub(y_pred, y))
        self._abs_error_sum += float(diff.sum().item())
        self._samples_num += int(y_pred.shape[0]) if y_pred.ndim else 1

    def eval(self):
        if self._samples_num == 0:
            self._empty()
        return self._abs_error_sum / self._samples_num


class MAE(_ErrorMetric):
    """Mean absolute error (summed over a sample's elements, averaged over samples)."""

    def _error(self, d):
        return ops.abs(d)


class MSE(_ErrorMetric):
    """Mean squared error (summed over a sample's elements, averaged over samples)."""

    def _error(self, d):
        return ops.square(d)


_METRICS = {
    "accuracy": Accuracy,
    "loss": Loss,
    "top_1_accuracy": Top1CategoricalAccuracy,
    "top_5_accuracy": Top5CategoricalAccuracy,
    "mae": MAE,
    "mse": MSE,
}


def names():
    """The metric names get_metric_fn knows, sorted."""
    return sorted(_METRICS)


def get_metric_fn(name, *args, **kwargs):
    """A new metric of the given name ('accuracy', 'loss', ...)."""
    if name not in _METRICS:
        raise KeyError(f"unknown metric {name!r}: the names are {', '.join(names())}")
    return _METRICS[name](*args, **kwargs)


def get_metrics(metrics):
    """{name: Metric} from Model's metrics argument: None, a set/list/tuple of
    names, or a dict of name -> Metric."""
    if metrics is None:
        return None
    if isinstance(metrics, dict):
        out = {}
        for name, m in metrics.items():
            if not isinstance(name, str) or not isinstance(m, Metric):
                raise TypeError(f"metrics: a dict maps names to Metric instances, not {name!r}: {type(m).__name__}")
            out[name] = m
        return out
    if isinstance(metrics, str):
        metrics = {metrics}
    if isinstance(metrics, (set, list, tuple)):
        out = {}
        for name in metrics:
            if not isinstance(name, str):
                raise TypeError(f"metrics: a set of metric names holds strings, not {type(name).__name__}")
            out[name] = get_metric_fn(name)
        return out
    raise TypeError(f"metrics must be None, a set of names or a dict of name -> Metric, not {type(metrics).__name__}")
