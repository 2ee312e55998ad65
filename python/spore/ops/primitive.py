"""Primitive: the base of the primitive classes of spore.ops.operations.

An instance stands for one Spore callable value (``_sp_value``): a primitive
of ops.def with its attributes bound, or a function of the API table with
MindSpore's operator-class conventions bound.  Calling the instance runs
that value through the VM (PYNATIVE_MODE); in GRAPH_MODE the compiler
embeds the same value, so both modes run the same C code.
"""
from spore import _C


class Primitive:
    """A primitive instance: ``P.Mul()(x, y)``."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__
        self.attrs = {}
        self._sp_value = None
        self.strategy = None

    def _bind(self, value):
        self._sp_value = value
        return self

    def __call__(self, *args, **kwargs):
        if self._sp_value is None:
            raise NotImplementedError(f"{self.name} has no Spore implementation")
        return self._sp_value(*args, **kwargs)

    def shard(self, in_strategy=None, out_strategy=None, **kwargs):
        """Keeps the parallel strategy for semi-auto parallel training; returns self."""
        self.strategy = in_strategy
        self.out_strategy = out_strategy
        return self

    def add_prim_attr(self, name, value):
        self.attrs[name] = value
        return self

    def set_device(self, device_target):
        self.attrs["primitive_target"] = device_target
        return self

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"Prim[{self.name}]" + (f"<{attrs}>" if attrs else "")


def constexpr(fn=None, **kwargs):
    """MindSpore's constexpr decorator: Spore folds constants itself."""
    if fn is None:
        return lambda f: f
    return fn
