"""spore.nn dynamic learning rates: MindSpore 2.x's list builders.

Each function returns a Python list with one learning rate per training
step (``total_step`` of them); an optimizer given such a list as its
``learning_rate`` uses entry ``global_step`` at each step (the last one
once the list is exhausted).  These run once, before training, on Python
floats -- they are configuration, not the training path.

Steps are grouped into epochs of ``step_per_epoch`` steps; the decay
functions see the epoch ``floor(i / step_per_epoch)``, with MindSpore's
formulas:

  exponential_decay_lr  lr * decay_rate ** p
  natural_exp_decay_lr  lr * exp(-decay_rate * p)
  inverse_decay_lr      lr / (1 + decay_rate * p)
                        p = epoch / decay_epoch (floored when is_stair)
  cosine_decay_lr       min_lr + (max_lr - min_lr) / 2 *
                        (1 + cos(pi * min(epoch, decay_epoch) / decay_epoch))
  polynomial_decay_lr   (lr - end_lr) * (1 - e / d) ** power + end_lr with
                        e = min(epoch, decay_epoch), d = decay_epoch, or,
                        with update_decay_epoch, e = epoch and d the first
                        multiple of decay_epoch >= epoch (at least one)
  warmup_lr             lr * min(epoch, warmup_epoch) / warmup_epoch
"""
import math

__all__ = ["piecewise_constant_lr", "exponential_decay_lr", "natural_exp_decay_lr", "inverse_decay_lr",
           "cosine_decay_lr", "polynomial_decay_lr", "warmup_lr"]


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


def _number(name, v, lo=None, strict=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(v).__name__}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}, got {v}")
    return float(v)


def piecewise_constant_lr(milestone, learning_rates):
    """learning_rates[i] for the steps before milestone[i] (and after
    milestone[i-1]); milestone is increasing, its last entry the total
    number of steps."""
    if not isinstance(milestone, (list, tuple)) or not isinstance(learning_rates, (list, tuple)):
        raise TypeError("piecewise_constant_lr: milestone and learning_rates must be lists")
    if len(milestone) != len(learning_rates):
        raise ValueError(f"piecewise_constant_lr: {len(milestone)} milestones but "
                         f"{len(learning_rates)} learning rates")
    lr, last = [], 0
    for i, (m, r) in enumerate(zip(milestone, learning_rates)):
        _positive_int(f"milestone[{i}]", m)
        if m <= last:
            raise ValueError(f"piecewise_constant_lr: milestone must increase, got {list(milestone)}")
        lr += [_number(f"learning_rates[{i}]", r)] * (m - last)
        last = m
    return lr


def _decay(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair, f):
    _number("learning_rate", learning_rate, 0, strict=True)
    _number("decay_rate", decay_rate)
    _positive_int("total_step", total_step)
    _positive_int("step_per_epoch", step_per_epoch)
    _positive_int("decay_epoch", decay_epoch)
    out = []
    for i in range(total_step):
        p = math.floor(i / step_per_epoch) / decay_epoch
        if is_stair:
            p = math.floor(p)
        out.append(f(learning_rate, decay_rate, p))
    return out


def exponential_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    return _decay(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair,
                  lambda lr, r, p: lr * r ** p)


def natural_exp_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    return _decay(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair,
                  lambda lr, r, p: lr * math.e ** (-r * p))


def inverse_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    return _decay(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair,
                  lambda lr, r, p: lr / (1 + r * p))


def cosine_decay_lr(min_lr, max_lr, total_step, step_per_epoch, decay_epoch):
    _number("min_lr", min_lr, 0)
    _number("max_lr", max_lr, 0, strict=True)
    if min_lr > max_lr:
        raise ValueError(f"cosine_decay_lr: min_lr {min_lr} is above max_lr {max_lr}")
    _positive_int("total_step", total_step)
    _positive_int("step_per_epoch", step_per_epoch)
    _positive_int("decay_epoch", decay_epoch)
    delta = 0.5 * (max_lr - min_lr)
    out = []
    for i in range(total_step):
        e = min(math.floor(i / step_per_epoch), decay_epoch)
        out.append(min_lr + delta * (1 + math.cos(math.pi * e / decay_epoch)))
    return out


def polynomial_decay_lr(learning_rate, end_learning_rate, total_step, step_per_epoch, decay_epoch, power,
                        update_decay_epoch=False):
    _number("learning_rate", learning_rate, 0, strict=True)
    _number("end_learning_rate", end_learning_rate, 0)
    _number("power", power, 0, strict=True)
    _positive_int("total_step", total_step)
    _positive_int("step_per_epoch", step_per_epoch)
    _positive_int("decay_epoch", decay_epoch)
    delta = learning_rate - end_learning_rate
    out = []
    for i in range(total_step):
        epoch = math.floor(i / step_per_epoch)
        if update_decay_epoch:
            d, e = decay_epoch * max(math.ceil(epoch / decay_epoch), 1), epoch
        else:
            d, e = decay_epoch, min(epoch, decay_epoch)
        out.append(delta * (1 - e / d) ** power + end_learning_rate)
    return out


def warmup_lr(learning_rate, total_step, step_per_epoch, warmup_epoch):
    _number("learning_rate", learning_rate, 0, strict=True)
    _positive_int("total_step", total_step)
    _positive_int("step_per_epoch", step_per_epoch)
    _positive_int("warmup_epoch", warmup_epoch)
    return [learning_rate * min(math.floor(i / step_per_epoch), warmup_epoch) / warmup_epoch
            for i in range(total_step)]
