"""spore.nn learning-rate schedules: MindSpore 2.x's LearningRateSchedule
Cells.

A schedule is a Cell called with the optimizer's ``global_step`` (an
integer Tensor) that returns the learning rate for that step as a float32
Tensor of global_step's shape.  Given to an optimizer as its
``learning_rate``, it is called inside the optimizer's construct, so in
GRAPH_MODE the schedule compiles into the training step and the rate is
computed on the device each step, with no recompilation.  Constructor
arguments are plain floats and ints, compile-time constants of the graph.

With s = float(global_step) (MindSpore's formulas):

  ExponentialDecayLR  lr * decay_rate ** p
  NaturalExpDecayLR   lr * exp(-decay_rate * p)
  InverseDecayLR      lr / (1 + decay_rate * p)
                      p = s / decay_steps (floored when is_stair)
  CosineDecayLR       min_lr + (max_lr - min_lr) / 2 *
                      (1 + cos(pi * min(s, decay_steps) / decay_steps))
  PolynomialDecayLR   (lr - end_lr) * (1 - t / d) ** power + end_lr with
                      t = min(s, decay_steps), d = decay_steps, or with
                      update_decay_steps t = s and d = decay_steps *
                      max(ceil(s / decay_steps), 1)
  WarmUpLR            lr * min(s, warmup_steps) / warmup_steps
"""
import math

from spore import ops
from spore.common import dtype as mstype
from spore.nn.cell import Cell

__all__ = ["LearningRateSchedule", "ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR",
           "CosineDecayLR", "PolynomialDecayLR", "WarmUpLR"]


def _float(cls, name, v, lo=None, strict=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{cls}: {name} must be a float, got {type(v).__name__}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise ValueError(f"{cls}: {name} must be {'>' if strict else '>='} {lo}, got {v}")
    return float(v)


def _steps(cls, name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")
    return v


class LearningRateSchedule(Cell):
    """The base of the schedules: ``construct(global_step)`` returns the
    learning rate of that step."""

    def construct(self, global_step):
        raise NotImplementedError(f"{type(self).__name__} must define construct(global_step)")


class _DecayLR(LearningRateSchedule):
    def __init__(self, learning_rate, decay_rate, decay_steps, is_stair=False):
        super().__init__()
        cls = type(self).__name__
        self.learning_rate = _float(cls, "learning_rate", learning_rate, 0, strict=True)
        self.decay_rate = _float(cls, "decay_rate", decay_rate)
        self.decay_steps = _steps(cls, "decay_steps", decay_steps)
        self.is_stair = bool(is_stair)

    def _p(self, global_step):
        p = ops.cast(global_step, mstype.float32) / self.decay_steps
        if self.is_stair:
            p = ops.floor(p)
        return p


class ExponentialDecayLR(_DecayLR):
    """ExponentialDecayLR(learning_rate, decay_rate, decay_steps, is_stair=False)."""

    def construct(self, global_step):
        return self.learning_rate * ops.exp(self._p(global_step) * self._log_rate)

    def __init__(self, learning_rate, decay_rate, decay_steps, is_stair=False):
        super().__init__(learning_rate, decay_rate, decay_steps, is_stair)
        if self.decay_rate <= 0:
            raise ValueError(f"ExponentialDecayLR: decay_rate must be > 0, got {decay_rate}")
        self._log_rate = math.log(self.decay_rate)


class NaturalExpDecayLR(_DecayLR):
    """NaturalExpDecayLR(learning_rate, decay_rate, decay_steps, is_stair=False)."""

    def construct(self, global_step):
        return self.learning_rate * ops.exp(self._p(global_step) * -self.decay_rate)


class InverseDecayLR(_DecayLR):
    """InverseDecayLR(learning_rate, decay_rate, decay_steps, is_stair=False)."""

    def construct(self, global_step):
        return self.learning_rate / (self._p(global_step) * self.decay_rate + 1.0)


class CosineDecayLR(LearningRateSchedule):
    """CosineDecayLR(min_lr, max_lr, decay_steps)."""

    def __init__(self, min_lr, max_lr, decay_steps):
        super().__init__()
        self.min_lr = _float("CosineDecayLR", "min_lr", min_lr, 0)
        self.max_lr = _float("CosineDecayLR", "max_lr", max_lr, 0, strict=True)
        if self.min_lr >= self.max_lr:
            raise ValueError(f"CosineDecayLR: min_lr {min_lr} must be below max_lr {max_lr}")
        self.decay_steps = _steps("CosineDecayLR", "decay_steps", decay_steps)
        self._delta = 0.5 * (self.max_lr - self.min_lr)
        self._w = math.pi / self.decay_steps

    def construct(self, global_step):
        s = ops.minimum(ops.cast(global_step, mstype.float32), float(self.decay_steps))
        return (ops.cos(s * self._w) + 1.0) * self._delta + self.min_lr


class PolynomialDecayLR(LearningRateSchedule):
    """PolynomialDecayLR(learning_rate, end_learning_rate, decay_steps, power,
    update_decay_steps=False)."""

    def __init__(self, learning_rate, end_learning_rate, decay_steps, power, update_decay_steps=False):
        super().__init__()
        cls = "PolynomialDecayLR"
        self.learning_rate = _float(cls, "learning_rate", learning_rate, 0, strict=True)
        self.end_learning_rate = _float(cls, "end_learning_rate", end_learning_rate, 0)
        self.decay_steps = _steps(cls, "decay_steps", decay_steps)
        self.power = _float(cls, "power", power, 0, strict=True)
        self.update_decay_steps = bool(update_decay_steps)
        self._diff = self.learning_rate - self.end_learning_rate

    def construct(self, global_step):
        s = ops.cast(global_step, mstype.float32)
        d = float(self.decay_steps)
        if self.update_decay_steps:
            d = ops.maximum(ops.ceil(s / d), 1.0) * d
        else:
            s = ops.minimum(s, d)
        return ops.pow(1.0 - s / d, self.power) * self._diff + self.end_learning_rate


class WarmUpLR(LearningRateSchedule):
    """WarmUpLR(learning_rate, warmup_steps)."""

    def __init__(self, learning_rate, warmup_steps):
        super().__init__()
        self.learning_rate = _float("WarmUpLR", "learning_rate", learning_rate, 0, strict=True)
        self.warmup_steps = _steps("WarmUpLR", "warmup_steps", warmup_steps)

    def construct(self, global_step):
        s = ops.minimum(ops.cast(global_step, mstype.float32), float(self.warmup_steps))
        return s * (self.learning_rate / self.warmup_steps)
