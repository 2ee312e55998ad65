"""Gradients: spore.grad, spore.value_and_grad and ops.GradOperation.

PYNATIVE_MODE (DESIGN.md §1): the function runs eagerly, as any Python
code -- a lambda, a functools.partial, a callable object, try/except,
dicts, loops on ``.item()``, other libraries between ops -- under the tape
of src/runtime/tape.h (``_C.tape_grad``): every primitive that runs is
recorded with its inputs and outputs, and the backward graph is built from
the same bprop rules, compiled by the same pipeline once per tape
structure, and run on the recorded tensors (the forward is not computed
again).  Inputs and weights are Tensors; unused ones get zeros, as in
MindSpore.

Falling back.  Where the tape cannot give the right answer it says so and
the gradient is compiled from the function's source exactly as in
GRAPH_MODE (so the source must be retrievable then):
  * a gradient taken inside the function (grad of grad, nested grads) or a
    compiled (GRAPH_MODE/@jit) function called inside it -- work the tape
    does not see; the function has then run once eagerly already, so its
    Python side effects happen twice;
  * a Python float among the inputs differentiated, or a function that
    returns a Python number (the tape follows Tensors, not Python
    arithmetic; the source compiler differentiates floats);
  * keyword arguments in the call.
In-place primitives (assign, the optimizers' updates) run but are not
differentiated; one that overwrites a tensor the backward still needs is
an error naming it.  ``x[idx] = v`` on a tensor that carries a gradient is
recorded functionally (x's gradient is zero at idx, v's is dout[idx]).

GRAPH_MODE: the C library's own grad (src/ad/grad.c) on the function
compiled from its Python source (spore._jit).  The objects returned here
are Python callables that also carry their Spore value (``_sp_value``), so
they work both when Python calls them and when a GRAPH_MODE function uses
them (the resolver takes ``_sp_value``).  A call from Python goes through
spore._jit.call: the Parameters the function and ``weights`` reach become
run-time inputs, which is what makes gradients with respect to a Cell's
Parameters (weights=net.trainable_params()) work.
"""
from spore import _C
from spore import context as _context


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
    callable from Python.  In PYNATIVE_MODE a call goes through the tape
    (``tape``: fn, grad_position, weights, has_aux, with_value,
    sens_param)."""

    def __init__(self, make, tape=None):
        self._make = make
        self._value = None
        self._lifted = {}
        self._tape = tape

    @property
    def _sp_value(self):
        from spore.nn.cell import _generation
        if self._value is None or self._value[0] != _generation[0]:
            self._value = (_generation[0], self._make())
        return self._value[1]

    def __call__(self, *args, **kwargs):
        from spore import _jit
        why = None
        if self._tape is not None and not kwargs and _context.get_context("mode") == _context.PYNATIVE_MODE:
            ok, r = _C.tape_grad(*self._tape, args)
            if ok:
                return r
            why = r
        try:
            return _jit.call(lambda: self._sp_value, self._lifted, args, kwargs)
        except _jit.GraphModeError as e:
            if why is None:
                raise
            raise _jit.GraphModeError(f"PyNative grad: the tape cannot differentiate this call ({why}), and "
                                      f"compiling the function instead failed: {e}") from None


def _api_pos(grad_position, w):
    """spore.grad's grad_position as _C.tape_grad takes it (MindSpore 2.x:
    None with weights means only the weights); None when the compiled path
    must report the call (None without weights)."""
    if grad_position is None:
        return False if w is not None else None
    return grad_position


def grad(fn, grad_position=0, weights=None, has_aux=False):
    """The gradient of fn with respect to the inputs at grad_position (an int,
    a tuple, or None for every input) and the weights (Parameters fn uses)."""
    w = _weights(weights)
    return _Derived(lambda: _C.deferred(_API["spore.grad"], _fn_value(fn), grad_position, w, has_aux),
                    None if _api_pos(grad_position, w) is None else
                    (fn, _api_pos(grad_position, w), w, has_aux, False, False))


def value_and_grad(fn, grad_position=0, weights=None, has_aux=False):
    """Like grad, returning (value, gradients)."""
    w = _weights(weights)
    return _Derived(lambda: _C.deferred(_API["spore.value_and_grad"], _fn_value(fn), grad_position, w, has_aux),
                    None if _api_pos(grad_position, w) is None else
                    (fn, _api_pos(grad_position, w), w, has_aux, True, False))


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
        tape = None
        if not self.get_by_list or weights is not None:  # else the compiled path reports the missing weights
            pos = None if self.get_all else False if self.get_by_list else 0
            tape = (fn, pos, w if self.get_by_list else None, False, False, self.sens_param)
        return _Derived(lambda: _C.deferred(_API["spore._grad_operation"], self.get_all, self.get_by_list,
                                            self.sens_param, _fn_value(fn), w), tape)
