"""spore.ops.functional (``F``): MindSpore's functional aliases
(``F.tensor_add``, ``F.square``, ...), each the same function as its
``spore.ops`` counterpart, plus the whole of ``spore.ops``."""
from spore import ops as _ops
from spore.ops import *  # noqa: F401,F403

tensor_add = _ops.add
tensor_sub = _ops.sub
tensor_mul = _ops.mul
tensor_div = _ops.div
tensor_pow = _ops.pow
tensor_lt = _ops.less
tensor_le = _ops.less_equal
tensor_gt = _ops.greater
tensor_ge = _ops.greater_equal
equal = _ops.equal
not_equal = _ops.not_equal
logical_and = _ops.logical_and
logical_or = _ops.logical_or
logical_not = _ops.logical_not
square = _ops.square
sqrt = _ops.sqrt
neg_tensor = _ops.neg
reduce_sum = _ops.sum
reduce_mean = _ops.mean
scalar_to_tensor = _ops.tensor
cast = _ops.cast
reshape = _ops.reshape
transpose = _ops.transpose
select = _ops.where
stop_gradient = _ops.stop_gradient
