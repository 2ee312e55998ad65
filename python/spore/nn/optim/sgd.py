"""spore.nn.SGD: stochastic gradient descent with optional momentum,
dampening, Nesterov momentum and weight decay (MindSpore 2.x's nn.SGD,
which is torch.optim.SGD's update).

Each parameter is updated by one fused in-place ``sgd_update`` kernel:

  g = grad / loss_scale + weight_decay * p
  v = momentum * v + (1 - dampening) * g      (v = g on the first step)
  p -= lr * (g + momentum * v if nesterov else v)     (p -= lr * g without momentum)

The primitive starts its buffer from zeros, which gives v = (1 -
dampening) * g on the first step; MindSpore (and torch) start it at g.
The two agree unless dampening != 0, and for that case only the first
step feeds the kernel g / (1 - dampening) (plus the matching correction of
the weight-decay term), selected on the device by global_step == 0, so the
update stays one kernel and a compiled step never branches on the host.
"""
from spore import _C, ops
from spore.nn.optim.optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD(params, learning_rate=0.1, momentum=0.0, dampening=0.0,
    weight_decay=0.0, nesterov=False, loss_scale=1.0)."""

    def __init__(self, params, learning_rate=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        for name, v in (("momentum", momentum), ("dampening", dampening)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"SGD: {name} must be a float, got {type(v).__name__}")
            if v < 0:
                raise ValueError(f"SGD: {name} must be >= 0, got {v}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov needs momentum > 0 and dampening 0, got momentum {momentum}, "
                             f"dampening {dampening}")
        if momentum > 0 and dampening >= 1:
            raise ValueError(f"SGD: dampening must be < 1 with momentum, got {dampening}")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self._first_fix = momentum > 0 and dampening > 0
        self._first_scale = 1.0 / (1.0 - dampening) if self._first_fix else 1.0
        # without momentum the kernel never reads its buffer: the parameter
        # itself stands in, and no state is allocated
        self.accum = self._clone_state("accum") if momentum > 0 else self._parameters
        prim = _C.prim("sgd_update")
        self._updates = tuple(_C.partial(prim, momentum=self.momentum, dampening=self.dampening,
                                         weight_decay=wd, nesterov=int(self.nesterov))
                              for wd in self._weight_decays)

    def construct(self, gradients):
        gradients = self.scale_grad(gradients)
        lrs = self._grouped_lrs()
        step = self.global_step + 1
        if self._first_fix:
            first = ops.reshape(ops.equal(self.global_step, 0), ())
            c = self._first_scale - 1.0
            for i in range(self._n):
                p = self._parameters[i]
                g0 = gradients[i]
                # g/(1-d) + wd*p*(1/(1-d) - 1): the kernel's (1-d)*(g' + wd*p) is then g + wd*p
                g = ops.where(first, g0 * self._first_scale + p * (c * self._weight_decays[i]), g0)
                self._updates[i](p, g, self.accum[i], lrs[self._group_of[i]])
        else:
            for i in range(self._n):
                self._updates[i](self._parameters[i], gradients[i], self.accum[i], lrs[self._group_of[i]])
        ops.assign(self.global_step, step)
        return True
