"""Basic layers: Dense, Flatten, Dropout and Identity (MindSpore 2.x), and the
argument checks and Parameter construction the other layer files share.

Every layer here is a Cell whose construct composes spore.ops calls: it runs
those C kernels eagerly in PYNATIVE_MODE and compiles into the caller's graph
in GRAPH_MODE, where every ``self.<attr>`` it reads is a compile-time
constant (a Parameter, a flag, a sub-cell).  So all configuration happens in
__init__, which validates every argument and fails with a TypeError or
ValueError naming the layer and the argument; construct never checks.

GRAPH_MODE cannot resolve an attribute whose value is None, even in a branch
a constant flag removes.  A layer with an optional part (Dense without bias
or activation) therefore keeps MindSpore's public attributes (``bias`` is
None, ``activation`` is None) and routes construct through a private alias
bound once in __init__: the part itself, or the Cell's ``_identity`` method,
which compiles to nothing.  Changing ``has_bias`` or ``activation`` after
construction is not supported (MindSpore does not support it either).

Parameters are named as MindSpore names them ("weight", "bias"), so
checkpoints and ``parameters_and_names()`` read the same; a parent Cell
prefixes the attribute path ("fc1.weight").
"""
import math
import numbers

from spore import ops
from spore.common import dtype as mstype
from spore.common.initializer import initializer, HeUniform, Uniform, Initializer
from spore.common.tensor import Tensor, Parameter
from spore.nn.cell import Cell
from spore.nn.layer.activation import get_activation
from spore.ops import operations as P

__all__ = ["Dense", "Flatten", "Dropout", "Identity"]


# ---- shared argument checks (used by the other layer files) ----

def _check_int(cls, name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{cls}: '{name}' must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{cls}: '{name}' must be at least {minimum}, got {value}")
    return int(value)


def _check_bool(cls, name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{cls}: '{name}' must be a bool, got {type(value).__name__} {value!r}")
    return value


def _check_float(cls, name, value, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{cls}: '{name}' must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{cls}: '{name}' must be in {lo}{low}, {high}{hi}, got {value}")
    return value


def _check_pair(cls, name, value, minimum=1):
    """An int or a tuple of 2 ints, as a tuple of 2."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or \
            not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{cls}: '{name}' must be an int or a tuple of 2 ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ValueError(f"{cls}: '{name}' must be at least {minimum}, got {tuple(value)}")
    return tuple(int(v) for v in value)


def _check_dtype(cls, name, value):
    if not hasattr(value, "_sp_dtype"):
        raise TypeError(f"{cls}: '{name}' must be a Spore dtype (spore.float32, ...), got {value!r}")
    return value


def _make_param(cls, arg, init, shape, dtype, name, requires_grad=True):
    """A Parameter called ``name`` of ``shape`` initialized by ``init`` (the
    layer argument ``arg``): a Tensor of that shape is copied, anything else
    goes to initializer(), with its errors naming the argument."""
    if isinstance(init, Tensor):
        if tuple(init.shape) != tuple(shape):
            raise ValueError(f"{cls}: '{arg}' has shape {tuple(init.shape)}, expected {tuple(shape)}")
        value = ops.cast(init, dtype) if init.dtype != dtype else init.copy()
    else:
        if not isinstance(init, (str, numbers.Number, Initializer)) or isinstance(init, bool):
            raise TypeError(f"{cls}: '{arg}' must be a Tensor, str, number or Initializer, "
                            f"got {type(init).__name__}")
        try:
            value = initializer(init, shape, dtype)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{cls}: '{arg}': {e}") from None
    return Parameter(value, name=name, requires_grad=requires_grad)


class _Layer(Cell):
    """A Cell with the identity the optional-part aliases fall back to."""

    def _identity(self, x):
        return x

    def _alias(self, name, value):
        # not through Cell.__setattr__: an alias of a sub-cell must not
        # register it a second time under a private name
        object.__setattr__(self, name, value)


class Dense(_Layer):
    """y = activation(x @ weight.T + bias): Dense(in_channels, out_channels,
    weight_init=None, bias_init=None, has_bias=True, activation=None,
    dtype=float32).  weight has shape (out_channels, in_channels); by default
    HeUniform(sqrt(5)) (bound 1/sqrt(in_channels)) and bias
    Uniform(1/sqrt(in_channels)), MindSpore's (and PyTorch's) defaults.
    The input may have any rank >= 2: the last axis is in_channels."""

    def __init__(self, in_channels, out_channels, weight_init=None, bias_init=None, has_bias=True,
                 activation=None, dtype=mstype.float32):
        super().__init__()
        self.in_channels = _check_int("Dense", "in_channels", in_channels, 1)
        self.out_channels = _check_int("Dense", "out_channels", out_channels, 1)
        self.has_bias = _check_bool("Dense", "has_bias", has_bias)
        dtype = _check_dtype("Dense", "dtype", dtype)
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = _make_param("Dense", "weight_init", weight_init, (self.out_channels, self.in_channels),
                                  dtype, "weight")
        self.bias = None
        if self.has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(self.in_channels))
            self.bias = _make_param("Dense", "bias_init", bias_init, (self.out_channels,), dtype, "bias")
        if isinstance(activation, str):
            activation = get_activation(activation)
        elif activation is not None and not isinstance(activation, (Cell, P.Primitive)):
            raise TypeError(f"Dense: 'activation' must be a str, a Cell or a Primitive, "
                            f"got {type(activation).__name__}")
        self.activation = activation
        self.activation_flag = activation is not None
        self.matmul = P.MatMul(transpose_b=True)
        self._alias("_add_bias", self._bias_add if self.has_bias else self._identity)
        self._alias("_activate", activation if activation is not None else self._identity)

    def _bias_add(self, x):
        return x + self.bias

    def construct(self, x):
        return self._activate(self._add_bias(self.matmul(x, self.weight)))

    def extend_repr(self):
        s = f"input_channels={self.in_channels}, output_channels={self.out_channels}"
        if self.has_bias:
            s += f", has_bias={self.has_bias}"
        if self.activation_flag:
            s += f", activation={self.activation}"
        return s


class Flatten(Cell):
    """Flattens the axes start_dim..end_dim into one: Flatten(start_dim=1,
    end_dim=-1) turns (N, C, H, W) into (N, C*H*W)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _check_int("Flatten", "start_dim", start_dim)
        self.end_dim = _check_int("Flatten", "end_dim", end_dim)

    def construct(self, x):
        return ops.flatten(x, start_dim=self.start_dim, end_dim=self.end_dim)

    def extend_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Cell):
    """Zeroes each element with probability p in training mode and scales the
    rest by 1/(1-p); the identity in evaluation mode (``set_train(False)``,
    the default of a new Cell).  Dropout(keep_prob=None, p=None): give p
    (the drop probability, in [0, 1)) or the older keep_prob (in (0, 1]);
    neither means p = 0.5.  The mask comes from Spore's generator."""

    def __init__(self, keep_prob=None, p=None, dtype=mstype.float32):
        super().__init__()
        if keep_prob is not None and p is not None:
            raise ValueError("Dropout: give 'p' or 'keep_prob', not both")
        if p is not None:
            p = _check_float("Dropout", "p", p, 0.0, 1.0, high_open=True)
        elif keep_prob is not None:
            p = 1.0 - _check_float("Dropout", "keep_prob", keep_prob, 0.0, 1.0, low_open=True)
        else:
            p = 0.5
        _check_dtype("Dropout", "dtype", dtype)
        self.p = p
        self.keep_prob = 1.0 - p

    def construct(self, x):
        if self.training:
            if self.p > 0:
                return ops.dropout(x, self.p)
        return x

    def extend_repr(self):
        return f"p={self.p}"


class Identity(Cell):
    """Returns its input."""

    def construct(self, x):
        return x
