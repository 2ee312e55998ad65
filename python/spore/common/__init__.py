"""spore.common: dtypes (``spore.common.dtype``, MindSpore's ``mstype``),
Tensor, Parameter and ParameterTuple."""
from spore.common import dtype
from spore.common.tensor import Tensor, Parameter, ParameterTuple

__all__ = ["dtype", "Tensor", "Parameter", "ParameterTuple"]
