"""spore.nn.Momentum: MindSpore 2.x's Momentum optimizer.

  v = momentum * v + grad            (grad / loss_scale + weight_decay * p)
  p -= lr * v                        or, with use_nesterov,
  p -= lr * (grad + momentum * v)

That is torch.optim.SGD with momentum and dampening 0 (torch's first-step
buffer v = grad is the same as momentum * 0 + grad), so each parameter is
one fused in-place ``sgd_update`` kernel; the buffers are the Parameters
"moments.<name>".
"""
from spore import _C
from spore import ops
from spore.nn.optim.optimizer import Optimizer

__all__ = ["Momentum"]


class Momentum(Optimizer):
    """Momentum(params, learning_rate, momentum, weight_decay=0.0,
    loss_scale=1.0, use_nesterov=False)."""

    def __init__(self, params, learning_rate, momentum, weight_decay=0.0, loss_scale=1.0,
                 use_nesterov=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise TypeError(f"Momentum: momentum must be a float, got {type(momentum).__name__}")
        if momentum < 0:
            raise ValueError(f"Momentum: momentum must be >= 0, got {momentum}")
        self.momentum = float(momentum)
        self.use_nesterov = bool(use_nesterov)
        self.moments = self._clone_state("moments")
        prim = _C.prim("sgd_update")
        nest = int(self.use_nesterov and self.momentum > 0)
        self._updates = tuple(_C.partial(prim, momentum=self.momentum, weight_decay=wd, nesterov=nest)
                              for wd in self._weight_decays)

    def construct(self, gradients):
        gradients = self.scale_grad(gradients)
        lrs = self._grouped_lrs()
        step = self.global_step + 1
        for i in range(self._n):
            self._updates[i](self._parameters[i], gradients[i], self.moments[i], lrs[self._group_of[i]])
        ops.assign(self.global_step, step)
        return True
