"""spore.nn.Optimizer: the base of the optimizers (MindSpore 2.x).

An optimizer is a Cell: ``optimizer(gradients)`` runs its ``construct``
on a tuple of gradients, one per Parameter in ``optimizer.parameters``,
and updates those Parameters IN PLACE with Spore's fused update
primitives (sgd_update, adam_update) -- eagerly in PYNATIVE_MODE, and in
GRAPH_MODE as part of the compiled step, where the in-place kernels run
after every gradient kernel.  Everything a subclass reads from ``self``
in construct (the parameter tuple, the state tuples, the primitives with
their hyper-parameters bound, group indices) is fixed here, so it is a
compile-time constant of the graph; only tensors change between steps.

Invariants the subclasses keep:

* Each in-place update reads values computed from the OLD state: the step
  counter for this step is ``global_step + 1`` computed before any update,
  and ``global_step`` itself is advanced last, with ``ops.assign``.
* ``global_step`` is an int32 Parameter of shape (1,) (MindSpore's) that
  counts the steps taken; the learning rate of a step is read with the
  count of the steps before it (0 for the first step).
* Learning rates: a float or 0-d Tensor (kept in a float32 Parameter
  "learning_rate", so it can be changed between steps without
  recompiling), a list or 1-D Tensor (one rate per step; the last one
  once the list runs out) or a LearningRateSchedule Cell called with
  global_step.  Parameter groups (dicts with "params", optionally "lr" and
  "weight_decay") each have their own.
* Weight decay without groups skips Parameters whose names contain
  "beta" or "gamma" (MindSpore's rule: norm scales and shifts).
* loss_scale divides the gradients before the update (MindSpore's
  ``weight_decay * loss_scale`` on scaled gradients is the same update).
* State Parameters (moments, accumulators) are named MindSpore's way,
  "<prefix>.<parameter name>", requires_grad=False, and are registered
  with the Cell so checkpoints of the optimizer hold them.
"""
import numpy as np

from spore import ops
from spore.common.tensor import Tensor, Parameter, ParameterTuple
from spore.nn.cell import Cell

__all__ = ["Optimizer"]


def _decay_filter(p):
    return "beta" not in p.name and "gamma" not in p.name


class _FixedLR(Cell):
    """A constant learning rate held in a Parameter (changeable in place)."""

    def __init__(self, value, name):
        super().__init__()
        self.value = Parameter(Tensor(np.array(value, np.float32)), name=name, requires_grad=False)

    def construct(self, global_step):
        return self.value


class _ListLR(Cell):
    """One learning rate per step; the last once the steps run past it."""

    def __init__(self, values):
        super().__init__()
        self.value = Tensor(np.asarray(values, np.float32).reshape(-1))
        self.last = int(self.value.shape[0]) - 1

    def construct(self, global_step):
        i = ops.minimum(ops.reshape(global_step, ()), self.last)
        return ops.gather(self.value, i, 0)


class _ScheduleLR(Cell):
    """A LearningRateSchedule, its result made 0-d."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def construct(self, global_step):
        return ops.reshape(self.schedule(global_step), ())


def _lr_cell(lr, name):
    from spore.nn.learning_rate_schedule import LearningRateSchedule
    if isinstance(lr, LearningRateSchedule):
        return _ScheduleLR(lr)
    if isinstance(lr, Cell):
        raise TypeError(f"learning_rate: a Cell must be a LearningRateSchedule, got {type(lr).__name__}")
    if isinstance(lr, bool):
        raise TypeError("learning_rate must be a float, a list, a Tensor or a LearningRateSchedule, not bool")
    if isinstance(lr, (int, float)):
        if lr < 0:
            raise ValueError(f"learning_rate must be >= 0, got {lr}")
        return _FixedLR(float(lr), name)
    if isinstance(lr, (list, tuple)):
        if not lr:
            raise ValueError("learning_rate: an empty list")
        return _ListLR([float(v) for v in lr])
    if isinstance(lr, Tensor):
        if len(lr.shape) == 0:
            return _FixedLR(float(lr.asnumpy()), name)
        if len(lr.shape) == 1:
            if lr.shape[0] == 0:
                raise ValueError("learning_rate: an empty Tensor")
            return _ListLR(lr.asnumpy().astype(np.float32))
        raise ValueError(f"learning_rate: a Tensor must be 0-d or 1-D, got shape {lr.shape}")
    raise TypeError(f"learning_rate must be a float, a list, a Tensor or a LearningRateSchedule, "
                    f"not {type(lr).__name__}")


class Optimizer(Cell):
    """Optimizer(learning_rate, parameters, weight_decay=0.0, loss_scale=1.0):
    the base class; subclasses define construct(gradients)."""

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale=1.0):
        super().__init__(auto_prefix=False)
        if parameters is None:
            raise ValueError("Optimizer: parameters must not be None")
        parameters = list(parameters)
        if not parameters:
            raise ValueError("Optimizer: the parameter list is empty")
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)) or loss_scale <= 0:
            raise ValueError(f"Optimizer: loss_scale must be a float > 0, got {loss_scale!r}")
        weight_decay = self._check_wd(weight_decay)
        self.loss_scale = float(loss_scale)
        self._need_scale = self.loss_scale != 1.0
        self._inv_scale = 1.0 / self.loss_scale
        self.is_group = isinstance(parameters[0], dict)
        params, wds, gids, lr_cells = [], [], [], []
        if self.is_group:
            for k, group in enumerate(parameters):
                if not isinstance(group, dict) or "params" not in group:
                    raise TypeError("Optimizer: a parameter group must be a dict with 'params'")
                unknown = set(group) - {"params", "lr", "weight_decay", "grad_centralization", "order_params"}
                if unknown:
                    raise ValueError(f"Optimizer: unknown keys in parameter group {k}: {sorted(unknown)}")
                ps = list(group["params"])
                lr_cells.append(_lr_cell(group.get("lr", learning_rate),
                                         "learning_rate" if k == 0 else f"learning_rate_group_{k}"))
                wd = self._check_wd(group.get("weight_decay", weight_decay))
                for p in ps:
                    params.append(p)
                    wds.append(wd)
                    gids.append(k)
        else:
            lr_cells.append(_lr_cell(learning_rate, "learning_rate"))
            for p in parameters:
                params.append(p)
                wds.append(weight_decay if isinstance(p, Parameter) and _decay_filter(p) else 0.0)
                gids.append(0)
        seen = set()
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"Optimizer: parameters must be Parameters, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"Optimizer: parameter {p.name} is given twice")
            seen.add(id(p))
        self._parameters = ParameterTuple(params)
        for p in params:
            self._params["optimizer_param." + p.name] = p
        self._weight_decays = tuple(wds)
        self._group_of = tuple(gids)
        self._n = len(params)
        self.weight_decay = weight_decay
        self._lr_cells = tuple(lr_cells)
        for k, c in enumerate(lr_cells):
            object.__setattr__(self, f"_lr_cell_{k}", c)
            self._cells[f"_lr_cell_{k}"] = c
            for p in c.get_parameters():
                self._params[f"_lr_{k}"] = p
        first = lr_cells[0]
        lr = first.value if isinstance(first, (_FixedLR, _ListLR)) else first.schedule
        object.__setattr__(self, "learning_rate", lr)
        self.global_step = self._state(Parameter(Tensor(np.zeros((1,), np.int32)), name="global_step",
                                                 requires_grad=False))

    @staticmethod
    def _check_wd(wd):
        if isinstance(wd, bool) or not isinstance(wd, (int, float)):
            raise TypeError(f"Optimizer: weight_decay must be a float, got {type(wd).__name__}")
        if wd < 0:
            raise ValueError(f"Optimizer: weight_decay must be >= 0, got {wd}")
        return float(wd)

    def _state(self, p):
        """Registers a state Parameter under a key that differs from its name,
        so that wrapping the optimizer in another Cell never renames it."""
        self._params["optimizer_state." + p.name] = p
        return p

    def _clone_state(self, prefix, init="zeros"):
        """One state Parameter per parameter, "<prefix>.<name>", zeros (or
        a copy of the parameter with init="same")."""
        out = []
        for p in self._parameters:
            if init == "zeros":
                t = ops.zeros_like(p)
            else:
                t = Tensor(p.asnumpy().copy(), p.dtype)
            out.append(self._state(Parameter(t, name=f"{prefix}.{p.name}", requires_grad=False)))
        return ParameterTuple(out)

    def __setattr__(self, name, value):
        # learning_rate and global_step are set through object.__setattr__ /
        # _state so that Cell's registration never renames them
        if name in ("global_step",) and isinstance(value, Parameter):
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    @property
    def parameters(self):
        """The Parameters this optimizer updates (a ParameterTuple)."""
        return self._parameters

    def get_lr(self):
        """The learning rate of the current step (global_step steps taken):
        a 0-d float32 Tensor, or a tuple of them, one per parameter, when
        the parameters are grouped."""
        if self.is_group:
            lrs = ()
            for c in self._lr_cells:
                lrs = lrs + (c(self.global_step),)
            out = ()
            for k in self._group_of:
                out = out + (lrs[k],)
            return out
        return self._lr_cells[0](self.global_step)

    def get_lr_parameter(self, param):
        """The learning rate (0-d Tensor) that applies to `param` now."""
        k = self._group_of[[id(p) for p in self._parameters].index(id(param))]
        return self._lr_cells[k](self.global_step)

    def _grouped_lrs(self):
        """One learning rate per parameter, each group's computed once."""
        lrs = ()
        for c in self._lr_cells:
            lrs = lrs + (c(self.global_step),)
        return lrs

    def scale_grad(self, gradients):
        if self._need_scale:
            out = ()
            for g in gradients:
                out = out + (g * self._inv_scale,)
            return out
        return gradients

    def construct(self, gradients):
        raise NotImplementedError(f"{type(self).__name__} must define construct(gradients)")
