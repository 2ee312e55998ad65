"""Gradients: spore.grad, spore.value_and_grad and ops.GradOperation.

All three are the source language's own (src/ad/grad.c): the function is
compiled from its Python source (spore._jit) and the C library's grad
returns a callable Spore value; calling it runs J and the backward pass in
C.  This is how gradients work in both modes today (PYNATIVE_MODE included:
the eager tape of DESIGN.md §1 is not built yet, so a PyNative gradient
compiles the function as GRAPH_MODE would).
"""
from spore import _C


def _fn_value(fn):
    from spore._jit import compile_function
    from spore.nn.cell import Cell
    if isinstance(fn, _C.Value):
        return fn
    if isinstance(fn, Cell):
        return compile_function(fn.construct, fn)
    if getattr(fn, "_sp_value", None) is not None:
        return fn._sp_value
    if hasattr(fn, "_spore_jit_fn"):
        return compile_function(fn._spore_jit_fn)
    return compile_function(fn)


def _weights(weights):
    if weights is None:
        return None
    if isinstance(weights, _C.TensorBase):
        return weights
    return tuple(weights)


def grad(fn, grad_position=0, weights=None, has_aux=False):
    """The gradient of fn with respect to the inputs at grad_position (an int,
    a tuple, or None for every input) and the weights (Parameters fn uses)."""
    return _C.api("spore.grad", _fn_value(fn), grad_position, _weights(weights), has_aux)


def value_and_grad(fn, grad_position=0, weights=None, has_aux=False):
    """Like grad, returning (value, gradients)."""
    return _C.api("spore.value_and_grad", _fn_value(fn), grad_position, _weights(weights), has_aux)


class GradOperation:
    """ops.GradOperation(get_all=False, get_by_list=False, sens_param=False):
    ``GradOperation()(fn)(*inputs)``; with get_by_list, ``(fn, weights)``."""

    def __init__(self, get_all=False, get_by_list=False, sens_param=False):
        self.get_all = get_all
        self.get_by_list = get_by_list
        self.sens_param = sens_param
        self._sp_value = _C.api("ops.GradOperation", get_all, get_by_list, sens_param)

    def __call__(self, fn, weights=None):
        return _C.api("spore._grad_operation", self.get_all, self.get_by_list, self.sens_param,
                      _fn_value(fn), _weights(weights))
