"""Gradients: spore.grad, spore.value_and_grad and ops.GradOperation.

All three are the source language's own (src/ad/grad.c): the function is
compiled from its Python source (spore._jit) and the C library's grad
returns a callable Spore value; calling it runs the gradient in C.  This
is how gradients work in both modes today (PYNATIVE_MODE included: the
eager tape of DESIGN.md §1 is not built yet, so a PyNative gradient
compiles the function as GRAPH_MODE would).

The objects returned here are Python callables that also carry their Spore
value (``_sp_value``), so they work both when Python calls them and when a
GRAPH_MODE function uses them (the resolver takes ``_sp_value``).  A call
from Python goes through spore._jit.call: the Parameters the function and
``weights`` reach become run-time inputs, which is what makes gradients
with respect to a Cell's Parameters (weights=net.trainable_params()) work.
"""
from spore import _C


class _ApiValues(dict):
    def __missing__(self, name):
        v = self[name] = _C.value("api", name)
        return v


_API = _ApiValues()  # the API functions as callable Spore values


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
        items = (weights,)
    else:
        weights = items = tuple(weights)
    from spore._jit import note_params
    note_params(items)
    return weights


class _Derived:
    """A function made from another by the gradient API: a Spore value
    (_C.deferred: the gradient is formed where it is called, so its
    weights are the lifted run-time Parameters) rebuilt when Cells change,
    callable from Python."""

    def __init__(self, make):
        self._make = make
        self._value = None
        self._lifted = {}

    @property
    def _sp_value(self):
        from spore.nn.cell import _generation
        if self._value is None or self._value[0] != _generation[0]:
            self._value = (_generation[0], self._make())
        return self._value[1]

    def __call__(self, *args, **kwargs):
        from spore import _jit
        return _jit.call(lambda: self._sp_value, self._lifted, args, kwargs)


def grad(fn, grad_position=0, weights=None, has_aux=False):
    """The gradient of fn with respect to the inputs at grad_position (an int,
    a tuple, or None for every input) and the weights (Parameters fn uses)."""
    w = _weights(weights)
    return _Derived(lambda: _C.deferred(_API["spore.grad"], _fn_value(fn), grad_position, w, has_aux))


def value_and_grad(fn, grad_position=0, weights=None, has_aux=False):
    """Like grad, returning (value, gradients)."""
    w = _weights(weights)
    return _Derived(lambda: _C.deferred(_API["spore.value_and_grad"], _fn_value(fn), grad_position, w, has_aux))


class GradOperation:
    """ops.GradOperation(get_all=False, get_by_list=False, sens_param=False):
    ``GradOperation()(fn)(*inputs)``; with get_by_list, ``(fn, weights)``."""

    def __init__(self, get_all=False, get_by_list=False, sens_param=False):
        self.get_all = get_all
        self.get_by_list = get_by_list
        self.sens_param = sens_param
        self._sp_value = _C.api("ops.GradOperation", get_all, get_by_list, sens_param)
        self._derived = {}

    def __call__(self, fn, weights=None):
        # one gradient object per (fn, weights): PyNative training steps call
        # this every step, and each object keeps its compilations
        key = (id(fn), id(weights))
        hit = self._derived.get(key)
        if hit is not None and hit[0] is fn and hit[1] is weights:
            return hit[2]
        d = self._make(fn, weights)
        self._derived[key] = (fn, weights, d)
        return d

    def _make(self, fn, weights):
        w = _weights(weights)
        return _Derived(lambda: _C.deferred(_API["spore._grad_operation"], self.get_all, self.get_by_list,
                                            self.sens_param, _fn_value(fn), w))
