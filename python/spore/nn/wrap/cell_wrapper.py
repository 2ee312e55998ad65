"""WithLossCell, TrainOneStepCell, WithEvalCell: MindSpore's training
wrappers.

TrainOneStepCell's construct is the whole step -- forward, gradient with
respect to the optimizer's Parameters, update -- written in the source
language, so in GRAPH_MODE calling it compiles ONE graph: the Parameters
(network weights and optimizer state) become its run-time inputs (see
spore/_jit.py, "lifting"), the gradient is expanded statically, and the
optimizer's in-place updates run at the end of the compiled step.  In
PYNATIVE_MODE the same construct runs line by line (the gradient is then
a compiled call of its own).
"""
from spore import ops
from spore.nn.cell import Cell
from spore.ops.composite import GradOperation

__all__ = ["WithLossCell", "TrainOneStepCell", "WithEvalCell", "WithGradCell"]


class WithLossCell(Cell):
    """``WithLossCell(backbone, loss_fn)``: ``loss_fn(backbone(data), label)``."""

    def __init__(self, backbone, loss_fn):
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data, label):
        out = self._backbone(data)
        return self._loss_fn(out, label)

    @property
    def backbone_network(self):
        return self._backbone


class WithEvalCell(Cell):
    """``WithEvalCell(network, loss_fn, add_cast_fp32=False)``: returns
    (loss, outputs, label) for evaluation."""

    def __init__(self, network, loss_fn, add_cast_fp32=False):
        super().__init__(auto_prefix=False)
        self._network = network
        self._loss_fn = loss_fn
        self.add_cast_fp32 = add_cast_fp32
        from spore.common.dtype import float32
        self._fp32 = float32

    def construct(self, data, label):
        outputs = self._network(data)
        if self.add_cast_fp32:
            outputs = outputs.astype(self._fp32)
        loss = self._loss_fn(outputs, label)
        return loss, outputs, label


class WithGradCell(Cell):
    """``WithGradCell(network, loss_fn=None, sens=None)``: the gradients of
    the (loss of the) network with respect to its trainable Parameters."""

    def __init__(self, network, loss_fn=None, sens=None):
        super().__init__(auto_prefix=False)
        self.network = network if loss_fn is None else WithLossCell(network, loss_fn)
        self.weights = network.trainable_params()
        self.sens = 1.0 if sens is None else sens
        self.grad = GradOperation(get_by_list=True, sens_param=True)

    def construct(self, *inputs):
        loss = self.network(*inputs)
        sens = ops.ones_like(loss) * self.sens
        return self.grad(self.network, self.weights)(*inputs, sens)


class TrainOneStepCell(Cell):
    """``TrainOneStepCell(network, optimizer, sens=None, return_grad=False)``:
    one training step of a network that returns its loss: computes the
    loss, the gradients of the optimizer's Parameters (scaled by sens,
    1.0 by default), applies the optimizer, and returns the loss (and the
    gradients with return_grad)."""

    def __init__(self, network, optimizer, sens=None, return_grad=False):
        super().__init__(auto_prefix=False)
        self.network = network
        self.network.set_grad()
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.grad = GradOperation(get_by_list=True, sens_param=True)
        self.sens = 1.0 if sens is None else float(sens)
        self.return_grad = return_grad

    def construct(self, *inputs):
        loss = self.network(*inputs)
        sens = ops.ones_like(loss) * self.sens
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        self.optimizer(grads)
        if self.return_grad:
            return loss, grads
        return loss
