"""Activation layers: ReLU, ReLU6, LeakyReLU, GELU, SiLU, Sigmoid, Tanh,
Softmax, LogSoftmax (MindSpore 2.x names and defaults), and get_activation,
which turns the names Dense(activation='relu') accepts into these Cells.

Each layer is one call of a spore.ops function, so it runs that C kernel
eagerly in PYNATIVE_MODE and compiles into the caller's graph in
GRAPH_MODE; the gradient is the primitive's own rule.  Options are fixed in
__init__ and read by construct as compile-time constants (GELU's
approximation, Softmax's axis).

MindSpore's GELU defaults to the tanh approximation (approximate=True),
unlike PyTorch's exact erf form; both are available.
"""
from spore import ops
from spore.nn.cell import Cell

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "get_activation"]


def _check_axis(cls, axis):
    if isinstance(axis, (tuple, list)) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{cls}: 'axis' must be an int, got {axis!r}")
    return axis


class ReLU(Cell):
    """max(x, 0)."""

    def construct(self, x):
        return ops.relu(x)


class ReLU6(Cell):
    """min(max(x, 0), 6)."""

    def construct(self, x):
        return ops.clamp(x, 0.0, 6.0)


class LeakyReLU(Cell):
    """x for x >= 0, alpha * x below: LeakyReLU(alpha=0.2)."""

    def __init__(self, alpha=0.2):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"LeakyReLU: 'alpha' must be a number, got {alpha!r}")
        self.alpha = float(alpha)

    def construct(self, x):
        return ops.leaky_relu(x, self.alpha)

    def extend_repr(self):
        return f"alpha={self.alpha}"


class GELU(Cell):
    """GELU(approximate=True): the tanh approximation by default (MindSpore),
    the exact erf form with approximate=False (PyTorch's default)."""

    def __init__(self, approximate=True):
        super().__init__()
        if not isinstance(approximate, bool):
            raise TypeError(f"GELU: 'approximate' must be a bool, got {approximate!r}")
        self.approximate = approximate
        self._mode = "tanh" if approximate else "none"

    def construct(self, x):
        return ops.gelu(x, self._mode)

    def extend_repr(self):
        return f"approximate={self.approximate}"


class SiLU(Cell):
    """x * sigmoid(x)."""

    def construct(self, x):
        return ops.silu(x)


class Sigmoid(Cell):
    """1 / (1 + exp(-x))."""

    def construct(self, x):
        return ops.sigmoid(x)


class Tanh(Cell):
    """tanh(x)."""

    def construct(self, x):
        return ops.tanh(x)


class Softmax(Cell):
    """Softmax(axis=-1)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = _check_axis("Softmax", axis)

    def construct(self, x):
        return ops.softmax(x, self.axis)

    def extend_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Cell):
    """LogSoftmax(axis=-1)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = _check_axis("LogSoftmax", axis)

    def construct(self, x):
        return ops.log_softmax(x, self.axis)

    def extend_repr(self):
        return f"axis={self.axis}"


_ACTIVATIONS = {
    "relu": ReLU, "relu6": ReLU6, "leakyrelu": LeakyReLU, "gelu": GELU, "silu": SiLU,
    "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax, "logsoftmax": LogSoftmax,
}


def get_activation(name, prim_name=None):
    """The activation Cell called ``name`` ('relu', 'gelu', 'softmax', ...);
    None for None."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"get_activation: the name must be a str, got {type(name).__name__}")
    cls = _ACTIVATIONS.get(name.lower())
    if cls is None:
        raise ValueError(f"get_activation: unknown activation '{name}' (known: {', '.join(sorted(_ACTIVATIONS))})")
    return cls()
