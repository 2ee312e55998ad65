"""spore.nn.Adam and spore.nn.AdamWeightDecay (MindSpore 2.x).

Adam (moments "moment1.<name>", "moment2.<name>"), with t the step count
after this step and g = grad / loss_scale + weight_decay * p (L2, coupled):

  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
  p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

one fused in-place ``adam_update`` kernel per parameter.  This is
torch.optim.Adam's form; MindSpore's ApplyAdam writes the step as
lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps), which differs only in
where eps sits (eps*sqrt(1-b2^t) there against eps here), a relative
difference below eps/sqrt(v).  use_nesterov follows ApplyAdam exactly
(p -= lr*sqrt(1-b2^t)/(1-b1^t) * (b1*m + (1-b1)*g) / (sqrt(v) + eps)) and
is composed from elementwise ops and three ops.assign updates, since no
fused kernel has that form.

AdamWeightDecay (moments "adam_m.<name>", "adam_v.<name>") is MindSpore's,
which has NO bias correction and decays the weights decoupled from the
moments (AdamW's idea, on the pre-update weights):

  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
  p -= lr * (m / (sqrt(v) + eps) + weight_decay * p)

the fused kernel with decoupled=1 and bias_correction=0.  It differs from
torch.optim.AdamW by that missing bias correction; the tests compare it
with the same formula computed by torch.
"""
from spore import _C, ops
from spore.common import dtype as mstype
from spore.nn.optim.optimizer import Optimizer

__all__ = ["Adam", "AdamWeightDecay"]


def _check_betas(cls, beta1, beta2, eps):
    for name, v in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{cls}: {name} must be a float, got {type(v).__name__}")
    if not 0.0 <= beta1 < 1.0 or not 0.0 <= beta2 < 1.0:
        raise ValueError(f"{cls}: beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
    if eps <= 0:
        raise ValueError(f"{cls}: eps must be > 0, got {eps}")


class Adam(Optimizer):
    """Adam(params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
    use_locking=False, use_nesterov=False, weight_decay=0.0, loss_scale=1.0,
    use_amsgrad=False)."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, use_locking=False,
                 use_nesterov=False, weight_decay=0.0, loss_scale=1.0, use_amsgrad=False, **kwargs):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        _check_betas("Adam", beta1, beta2, eps)
        if use_amsgrad:
            raise NotImplementedError("Adam: use_amsgrad=True is not supported")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.use_locking = bool(use_locking)
        self.use_nesterov = bool(use_nesterov)
        self.moment1 = self._clone_state("moment1")
        self.moment2 = self._clone_state("moment2")
        prim = _C.prim("adam_update")
        self._updates = tuple(_C.partial(prim, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                                         weight_decay=wd)
                              for wd in self._weight_decays)

    def _nesterov(self, p, g, m, v, lr, t, wd):
        if wd != 0.0:
            g = g + p * wd
        m_new = m * self.beta1 + g * (1.0 - self.beta1)
        v_new = v * self.beta2 + ops.square(g) * (1.0 - self.beta2)
        lr_t = lr * ops.sqrt(1.0 - ops.pow(self.beta2, t)) / (1.0 - ops.pow(self.beta1, t))
        upd = (m_new * self.beta1 + g * (1.0 - self.beta1)) / (ops.sqrt(v_new) + self.eps)
        ops.assign(p, p - upd * lr_t)
        ops.assign(m, m_new)
        ops.assign(v, v_new)

    def construct(self, gradients):
        gradients = self.scale_grad(gradients)
        lrs = self._grouped_lrs()
        step = self.global_step + 1
        t = ops.reshape(step, ())
        if self.use_nesterov:
            tf = ops.cast(t, mstype.float32)
            for i in range(self._n):
                self._nesterov(self._parameters[i], gradients[i], self.moment1[i], self.moment2[i],
                               lrs[self._group_of[i]], tf, self._weight_decays[i])
        else:
            for i in range(self._n):
                self._updates[i](self._parameters[i], gradients[i], self.moment1[i], self.moment2[i],
                                 lrs[self._group_of[i]], t)
        ops.assign(self.global_step, step)
        return True


class AdamWeightDecay(Optimizer):
    """AdamWeightDecay(params, learning_rate=1e-3, beta1=0.9, beta2=0.999,
    eps=1e-6, weight_decay=0.0)."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        _check_betas("AdamWeightDecay", beta1, beta2, eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.moments1 = self._clone_state("adam_m")
        self.moments2 = self._clone_state("adam_v")
        prim = _C.prim("adam_update")
        self._updates = tuple(_C.partial(prim, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                                         weight_decay=wd, decoupled=1, bias_correction=0)
                              for wd in self._weight_decays)

    def construct(self, gradients):
        lrs = self._grouped_lrs()
        step = self.global_step + 1
        t = ops.reshape(step, ())
        for i in range(self._n):
            self._updates[i](self._parameters[i], gradients[i], self.moments1[i], self.moments2[i],
                             lrs[self._group_of[i]], t)
        ops.assign(self.global_step, step)
        return True
