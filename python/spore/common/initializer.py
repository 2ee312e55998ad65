"""spore.common.initializer: the values a Parameter starts from.

MindSpore 2.x's initializers with its names, defaults and formulas:
``initializer(init, shape, dtype)`` turns a name ('normal', 'zeros',
'he_uniform', ...), a number, a Tensor or an Initializer instance (Normal,
TruncatedNormal, Uniform, XavierUniform, XavierNormal, HeUniform, HeNormal,
Zero, One, Constant) into a Tensor of that shape and dtype.  A layer calls
it once in its ``__init__`` and wraps the result in a Parameter.

Every random value comes from Spore's own generator (ops.randn and
ops.uniform: Philox 4x32-10 behind spore.set_seed), never from numpy, so the
same seed gives the same weights on any machine, CPU or GPU.  Draws happen in
float32 (or float64 when asked) and are cast to the requested dtype at the
end, so an int or float16 Parameter gets the same values rounded.

Fans follow MindSpore (and PyTorch): a weight of shape (out, in) has
fan_in = in, fan_out = out; a convolution weight (out, in/group, k...) has
the receptive field (the product of the trailing dims) multiplied into both.
Shapes with fewer than two dims have no fans: the fan-based initializers
raise a ValueError for them, as MindSpore does.

Invariant: an initializer only reads its own settings; drawing does not
change it, so one instance can initialize many tensors.  Bad settings
(a negative sigma, an unknown mode or nonlinearity) fail in the
constructor with a ValueError naming the argument, not at draw time.
"""
import math
import numbers

from spore.common import dtype as mstype
from spore.common.tensor import Tensor

__all__ = ["Initializer", "initializer", "Normal", "TruncatedNormal", "Uniform", "XavierUniform",
           "XavierNormal", "HeUniform", "HeNormal", "Zero", "One", "Constant", "calculate_gain"]

_FLOAT_DRAW = (mstype.float32, mstype.float64)


def _ops():
    from spore import ops  # spore.ops imports spore.common: import at call time
    return ops


def _check_number(name, value, cls, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{cls}: '{name}' must be a number, got {type(value).__name__}")
    if positive and value < 0:
        raise ValueError(f"{cls}: '{name}' must be >= 0, got {value}")
    return float(value)


def _calculate_fan_in_and_fan_out(shape):
    """(fan_in, fan_out) of a weight shape; ValueError below two dims."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("'fan_in' and 'fan_out' can not be computed for a tensor with fewer than 2 "
                         f"dimensions, but got shape {shape}")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain of a nonlinearity (MindSpore's and PyTorch's
    table): 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2/(1+slope^2)) for leaky_relu, 3/4 for selu."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        slope = _check_number("negative_slope", slope, "calculate_gain")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity '{nonlinearity}'")


def _fan(shape, mode):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


class Initializer:
    """The base class: a subclass defines ``_draw(shape, dtype)``, returning a
    Tensor of exactly that shape (the dtype a float type to draw in)."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    def _draw(self, shape, dtype):
        raise NotImplementedError(f"{type(self).__name__} does not define _draw")

    def _make(self, shape, dtype):
        ops = _ops()
        draw_dtype = dtype if dtype in _FLOAT_DRAW else mstype.float32
        t = self._draw(tuple(shape), draw_dtype)
        if t.dtype != dtype:
            t = ops.cast(t, dtype)
        return t

    def __call__(self, arr):
        """MindSpore's in-place form: fills the numpy array ``arr``."""
        arr[...] = self._make(arr.shape, mstype.float32).asnumpy()
        return arr

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"


class Normal(Initializer):
    """N(mean, sigma^2): Normal(sigma=0.01, mean=0.0)."""

    def __init__(self, sigma=0.01, mean=0.0):
        super().__init__(sigma=sigma, mean=mean)
        self.sigma = _check_number("sigma", sigma, "Normal", positive=True)
        self.mean = _check_number("mean", mean, "Normal")

    def _draw(self, shape, dtype):
        return _normal(shape, dtype, self.mean, self.sigma)


def _normal(shape, dtype, mean, std):
    ops = _ops()
    z = ops.randn(shape, dtype=dtype)
    return z * std + mean if (std != 1 or mean != 0) else z


def _uniform(shape, dtype, low, high):
    return _ops().uniform(shape, low, high, dtype=dtype)


class TruncatedNormal(Initializer):
    """N(mean, sigma^2) restricted to [a, b] (absolute bounds, MindSpore 2.x):
    TruncatedNormal(sigma=0.01, mean=0.0, a=-2.0, b=2.0).  Values outside are
    drawn again, so the result is the truncated distribution, not a clip."""

    _MAX_ROUNDS = 64

    def __init__(self, sigma=0.01, mean=0.0, a=-2.0, b=2.0):
        super().__init__(sigma=sigma, mean=mean, a=a, b=b)
        self.sigma = _check_number("sigma", sigma, "TruncatedNormal", positive=True)
        self.mean = _check_number("mean", mean, "TruncatedNormal")
        self.a = _check_number("a", a, "TruncatedNormal")
        self.b = _check_number("b", b, "TruncatedNormal")
        if not self.a < self.b:
            raise ValueError(f"TruncatedNormal: 'a' ({a}) must be less than 'b' ({b})")

    def _draw(self, shape, dtype):
        ops = _ops()
        x = _normal(shape, dtype, self.mean, self.sigma)
        # Redraw the rejected entries; with the usual bounds (2 sigma) each
        # round keeps ~95%, so a handful of rounds settles any tensor.  A
        # window far in the tail could take longer: the clamp ends it.
        for _ in range(self._MAX_ROUNDS):
            bad = ops.logical_or(x < self.a, x > self.b)
            if not bool(ops.any(bad)):
                return x
            x = ops.where(bad, _normal(shape, dtype, self.mean, self.sigma), x)
        return ops.clamp(x, self.a, self.b)


class Uniform(Initializer):
    """U(-scale, scale): Uniform(scale=0.07)."""

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = _check_number("scale", scale, "Uniform", positive=True)

    def _draw(self, shape, dtype):
        return _uniform(shape, dtype, -self.scale, self.scale)


class XavierUniform(Initializer):
    """U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, gain=1):
        super().__init__(gain=gain)
        self.gain = _check_number("gain", gain, "XavierUniform")

    def _draw(self, shape, dtype):
        fan_in, fan_out = _calculate_fan_in_and_fan_out(shape)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _uniform(shape, dtype, -bound, bound)


class XavierNormal(Initializer):
    """N(0, sigma^2), sigma = gain * sqrt(2 / (fan_in + fan_out))."""

    def __init__(self, gain=1):
        super().__init__(gain=gain)
        self.gain = _check_number("gain", gain, "XavierNormal")

    def _draw(self, shape, dtype):
        fan_in, fan_out = _calculate_fan_in_and_fan_out(shape)
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _normal(shape, dtype, 0.0, std)


class _He(Initializer):
    def __init__(self, negative_slope=0, mode="fan_in", nonlinearity="leaky_relu"):
        super().__init__(negative_slope=negative_slope, mode=mode, nonlinearity=nonlinearity)
        cls = type(self).__name__
        self.negative_slope = _check_number("negative_slope", negative_slope, cls)
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"{cls}: 'mode' must be 'fan_in' or 'fan_out', got {mode!r}")
        self.mode = mode
        self.nonlinearity = nonlinearity
        self.gain = calculate_gain(nonlinearity, self.negative_slope)

    def _std(self, shape):
        fan = _fan(shape, self.mode)
        return self.gain / math.sqrt(fan) if fan else 0.0


class HeUniform(_He):
    """Kaiming uniform: U(-bound, bound), bound = gain * sqrt(3 / fan);
    HeUniform(negative_slope=0, mode='fan_in', nonlinearity='leaky_relu').
    HeUniform(math.sqrt(5)) is the default weight of Dense and Conv2d:
    bound = 1/sqrt(fan_in), PyTorch's default too."""

    def _draw(self, shape, dtype):
        bound = math.sqrt(3.0) * self._std(shape)
        return _uniform(shape, dtype, -bound, bound)


class HeNormal(_He):
    """Kaiming normal: N(0, sigma^2), sigma = gain / sqrt(fan)."""

    def _draw(self, shape, dtype):
        return _normal(shape, dtype, 0.0, self._std(shape))


class Constant(Initializer):
    """Every element ``value``: Constant(value)."""

    def __init__(self, value):
        super().__init__(value=value)
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            raise TypeError(f"Constant: 'value' must be a number, got {type(value).__name__}")
        self.value = value

    def _draw(self, shape, dtype):
        return _ops().full(shape, self.value, dtype=dtype)

    def _make(self, shape, dtype):
        return _ops().full(tuple(shape), self.value, dtype=dtype)


class Zero(Constant):
    """Zeros: Zero()."""

    def __init__(self):
        Initializer.__init__(self)
        self.value = 0


class One(Constant):
    """Ones: One()."""

    def __init__(self):
        Initializer.__init__(self)
        self.value = 1


_ALIAS = {
    "normal": Normal, "zeros": Zero, "zero": Zero, "ones": One, "one": One,
    "uniform": Uniform, "truncatednormal": TruncatedNormal, "truncated_normal": TruncatedNormal,
    "xavier_uniform": XavierUniform, "xavieruniform": XavierUniform,
    "xavier_normal": XavierNormal, "xaviernormal": XavierNormal,
    "he_uniform": HeUniform, "heuniform": HeUniform, "he_normal": HeNormal, "henormal": HeNormal,
}


def _check_shape(shape):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or \
            not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"initializer: 'shape' must be an int or a tuple/list of ints, got {shape!r}")
    if any(s < 0 for s in shape):
        raise ValueError(f"initializer: 'shape' must not hold negative sizes, got {tuple(shape)}")
    return tuple(int(s) for s in shape)


def initializer(init, shape=None, dtype=mstype.float32):
    """A Tensor of ``shape`` and ``dtype`` made by ``init``: an Initializer,
    an alias string ('normal', 'zeros', 'ones', 'uniform', 'truncatednormal',
    'xavier_uniform', 'xavier_normal', 'he_uniform', 'he_normal'), a number
    (a constant) or a Tensor (returned as it is; its shape must match)."""
    if isinstance(init, Tensor):
        if shape is not None and tuple(init.shape) != _check_shape(shape):
            raise ValueError(f"initializer: the Tensor's shape {tuple(init.shape)} does not match "
                             f"'shape' {_check_shape(shape)}")
        return init
    if isinstance(init, str):
        cls = _ALIAS.get(init.lower())
        if cls is None:
            raise ValueError(f"initializer: unknown initializer '{init}' (known: {', '.join(sorted(_ALIAS))})")
        init = cls()
    elif isinstance(init, numbers.Number) and not isinstance(init, bool):
        init = Constant(init)
    elif not isinstance(init, Initializer):
        raise TypeError(f"initializer: 'init' must be a Tensor, str, number or Initializer, "
                        f"got {type(init).__name__}")
    if shape is None:
        raise ValueError("initializer: 'shape' is required unless 'init' is a Tensor")
    shape = _check_shape(shape)
    if not hasattr(dtype, "_sp_dtype"):
        raise TypeError(f"initializer: 'dtype' must be a Spore dtype (spore.float32, ...), got {dtype!r}")
    return init._make(shape, dtype)
