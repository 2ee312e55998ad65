# nondiff.py -- rules for the primitives without a gradient (no SP_OPF_DIFF
# in ops.def): comparisons, logic and predicates (bool out), argmax/argmin
# and one_hot (integer in or out), floor_div (piecewise constant), and the
# creation and random primitives (no tensor inputs).
#
# They exist so that the K transform can pass through such a primitive when
# it differentiates a program -- or a rule, for grad of grad: relu's rule
# calls greater, max's calls equal -- without special cases: an integer or
# bool input gets None and a float input of a piecewise-constant function
# gets zeros.  The fused backward primitives (layer_norm_backward,
# batch_norm_backward) deliberately have NO rule here: their gradient is not
# zero, and no rule in this folder calls them, so differentiating through
# one must fail loudly.  sparse_softmax_cross_entropy_backward, which
# cross-entropy's rule calls, has its real rule in nn.py.
from spore import ops
from spore import prim
import spore


def _zero_or_none(x):
    if _is_float(x):
        return ops.zeros_like(x)
    return None


def bprop_logical_not(x, out, dout):
    return (None,)


def bprop_isnan(x, out, dout):
    return (None,)


def bprop_isfinite(x, out, dout):
    return (None,)


def bprop_equal(a, b, out, dout):
    return (None, None)


def bprop_not_equal(a, b, out, dout):
    return (None, None)


def bprop_less(a, b, out, dout):
    return (None, None)


def bprop_less_equal(a, b, out, dout):
    return (None, None)


def bprop_greater(a, b, out, dout):
    return (None, None)


def bprop_greater_equal(a, b, out, dout):
    return (None, None)


def bprop_logical_and(a, b, out, dout):
    return (None, None)


def bprop_logical_or(a, b, out, dout):
    return (None, None)


def bprop_floor_div(a, b, out, dout):
    return (_zero_or_none(a), _zero_or_none(b))


def bprop_argmax(x, out, dout, axis=None, keepdims=0):
    return (None,)


def bprop_argmin(x, out, dout, axis=None, keepdims=0):
    return (None,)


def bprop_one_hot(indices, out, dout, depth=0, dtype=None, on_value=1.0, off_value=0.0):
    return (None,)


def bprop_arange(out, dout, start=0, stop=None, step=1, dtype=None):
    return ()


def bprop_full(out, dout, shape=None, dtype=None, value=0.0):
    return ()


def bprop_zeros(out, dout, shape=None, dtype=None):
    return ()


def bprop_ones(out, dout, shape=None, dtype=None):
    return ()


def bprop_uniform(out, dout, shape=None, dtype=None, seed=0, offset=0, low=0.0, high=1.0):
    return ()


def bprop_normal(out, dout, shape=None, dtype=None, seed=0, offset=0, mean=0.0, std=1.0):
    return ()


def bprop_bernoulli(out, dout, shape=None, dtype=None, seed=0, offset=0, p=0.5):
    return ()


def bprop_randint(out, dout, shape=None, dtype=None, seed=0, offset=0, low=0, high=None):
    return ()
