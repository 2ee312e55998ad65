"""spore.nn losses: MindSpore 2.x's loss Cells.

Each loss is a Cell whose ``construct`` composes spore.ops functions, so
the same code runs eagerly (PYNATIVE_MODE) and compiles into the training
graph (GRAPH_MODE); every choice a constructor argument makes (reduction,
weights, smoothing) is an attribute read at compile time, so a compiled
loss carries no branches it does not take.

Semantics are MindSpore's, which for the shared ones are PyTorch's:

* ``reduction`` is 'mean' (over every element), 'sum' or 'none'.
* Class-index labels may have any integer dtype (MNIST labels are uint8);
  they are cast to int32 on the way in.
* SoftmaxCrossEntropyWithLogits(sparse=True) and CrossEntropyLoss without
  class weights or smoothing and with a negative ``ignore_index`` (the
  default -100) run the fused ``sparse_softmax_cross_entropy`` primitive
  (one kernel forward, one backward).  There a label equal to a negative
  ignore_index is reported as out of range, like any other bad label,
  instead of being skipped; every other configuration takes the general
  path (log_softmax, take_along_axis, masks), which skips ignored labels
  exactly as torch.nn.CrossEntropyLoss / NLLLoss do, including the
  weighted mean (divided by the summed weights of the kept labels) and
  label smoothing (``(1-e)*nll + e*mean_c(-w_c*logp_c)``).
* BCEWithLogitsLoss works in log space: ``w*(pw*y*softplus(-x) +
  (1-y)*softplus(x))``, never ``log(sigmoid(x))``, so large logits do not
  overflow.
"""
from spore import ops
from spore.common import dtype as mstype
from spore.nn.cell import Cell

__all__ = ["LossBase", "SoftmaxCrossEntropyWithLogits", "CrossEntropyLoss", "MSELoss", "L1Loss",
           "BCEWithLogitsLoss", "NLLLoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(cls, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{cls}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _as_float_tensor(value, what):
    """A float32 Tensor of an optional weight.  None becomes 1.0: construct
    reads the attribute only behind a compile-time flag, but GRAPH_MODE
    resolves every ``self.<attr>`` it sees, so it must be a value."""
    if value is None:
        return 1.0
    from spore.common.tensor import Tensor
    if not isinstance(value, Tensor):
        value = Tensor(value, mstype.float32)
    return value


class LossBase(Cell):
    """The base of the losses: ``get_loss(x, weights=1.0)`` applies the
    reduction chosen at construction to an elementwise loss ``x``."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(type(self).__name__, reduction)
        self._mean = reduction == "mean"
        self._sum = reduction == "sum"

    def get_loss(self, x, weights=1.0):
        x = x * weights
        if self._mean:
            return ops.mean(x)
        if self._sum:
            return ops.sum(x)
        return x

    def construct(self, logits, labels):
        raise NotImplementedError(f"{type(self).__name__} must define construct()")


class MSELoss(LossBase):
    """MSELoss(reduction='mean')(logits, labels): (logits - labels)**2,
    broadcast, reduced."""

    def construct(self, logits, labels):
        return self.get_loss(ops.square(logits - labels))


class L1Loss(LossBase):
    """L1Loss(reduction='mean')(logits, labels): |logits - labels|,
    broadcast, reduced."""

    def construct(self, logits, labels):
        return self.get_loss(ops.abs(logits - labels))


class BCEWithLogitsLoss(LossBase):
    """BCEWithLogitsLoss(reduction='mean', weight=None, pos_weight=None)
    (logits, labels): binary cross-entropy of sigmoid(logits) against
    float labels in [0, 1]; ``weight`` scales each element (broadcast),
    ``pos_weight`` the positive term per class (broadcast on the last
    axis)."""

    def __init__(self, reduction="mean", weight=None, pos_weight=None):
        super().__init__(reduction)
        self.weight = _as_float_tensor(weight, "weight")
        self.pos_weight = _as_float_tensor(pos_weight, "pos_weight")
        self._has_weight = weight is not None
        self._has_pos_weight = pos_weight is not None

    def construct(self, logits, labels):
        neg = ops.softplus(logits)    # -log(1 - sigmoid(x))
        pos = ops.softplus(-logits)   # -log(sigmoid(x))
        if self._has_pos_weight:
            pos = pos * self.pos_weight
        loss = labels * pos + (1 - labels) * neg
        if self._has_weight:
            loss = loss * self.weight
        return self.get_loss(loss)


class SoftmaxCrossEntropyWithLogits(LossBase):
    """SoftmaxCrossEntropyWithLogits(sparse=False, reduction='none')
    (logits [N, C], labels): cross-entropy of softmax(logits) with one-hot
    (or probability) labels [N, C], or with class indices [N] when
    ``sparse`` (then the fused primitive, forward and backward)."""

    def __init__(self, sparse=False, reduction="none"):
        super().__init__(reduction)
        self.sparse = bool(sparse)

    def construct(self, logits, labels):
        if self.sparse:
            return ops.cross_entropy(logits, ops.cast(labels, mstype.int32), reduction=self.reduction)
        loss = -ops.sum(labels * ops.log_softmax(logits, -1), -1)
        return self.get_loss(loss)


class NLLLoss(LossBase):
    """NLLLoss(weight=None, ignore_index=-100, reduction='mean')(logits
    [N, C], labels [N]): ``-w[t]*logits[i, t]`` for log-probabilities
    ``logits``; labels equal to ignore_index count for nothing, and the
    mean divides by the summed weights of the labels kept.  A label out of
    [0, C) that is not ignore_index is an error."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight = _as_float_tensor(weight, "weight")
        self._has_weight = weight is not None
        self.ignore_index = int(ignore_index)

    def _nll(self, logp, labels):
        """(per-sample loss, per-sample weight) with ignored labels zeroed."""
        t = ops.cast(labels, mstype.int32)
        keep = ops.not_equal(t, self.ignore_index)
        tc = ops.where(keep, t, 0)
        # reshape, not squeeze: ops.squeeze passes no gradient (reported)
        picked = ops.reshape(ops.take_along_axis(logp, ops.expand_dims(tc, 1), 1), (-1,))
        w = ops.where(keep, ops.ones_like(picked), 0.0)
        if self._has_weight:
            w = w * ops.gather(self.weight, tc, 0)
        return -picked * w, w

    def _reduce(self, loss, w):
        if self._mean:
            return ops.sum(loss) / ops.sum(w)
        if self._sum:
            return ops.sum(loss)
        return loss

    def construct(self, logits, labels):
        loss, w = self._nll(logits, labels)
        return self._reduce(loss, w)


class CrossEntropyLoss(NLLLoss):
    """CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean',
    label_smoothing=0.0)(logits [N, C], labels [N] class indices):
    log_softmax followed by NLLLoss, with torch's label smoothing."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, ignore_index, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self._fused = weight is None and label_smoothing == 0.0 and self.ignore_index < 0

    def construct(self, logits, labels):
        if self._fused:
            return ops.cross_entropy(logits, ops.cast(labels, mstype.int32), reduction=self.reduction)
        logp = ops.log_softmax(logits, 1)
        loss, w = self._nll(logp, labels)
        nll = self._reduce(loss, w)
        if self.label_smoothing == 0.0:
            return nll
        keep = ops.not_equal(ops.cast(labels, mstype.int32), self.ignore_index)
        if self._has_weight:
            smooth = ops.where(keep, -ops.mean(logp * self.weight, 1), 0.0)
        else:
            smooth = ops.where(keep, -ops.mean(logp, 1), 0.0)
        if self._mean:
            if self._has_weight:
                smooth = ops.sum(smooth) / ops.sum(w)
            else:
                smooth = ops.mean(smooth)
        elif self._sum:
            smooth = ops.sum(smooth)
        return nll * (1.0 - self.label_smoothing) + smooth * self.label_smoothing
