"""Primitive: the base of the primitive classes of spore.ops.operations.

An instance stands for one Spore callable value (``_sp_value``): a primitive
of ops.def with its attributes bound, or a function of the API table with
MindSpore's operator-class conventions bound.  Calling the instance runs
that value through the VM (PYNATIVE_MODE); in GRAPH_MODE the compiler
embeds the same value, so both modes run the same C code.
"""
from operator import attrgetter


class Primitive:
    """A primitive instance: ``P.Mul()(x, y)``."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__
        self.attrs = {}
        self._sp_value = None
        self.strategy = None

    def _bind(self, value):
        self._sp_value = value
        self._callee = value
        return self

    def _unbound(self, *args, **kwargs):
        if self._sp_value is not None:  # set directly rather than through _bind
            return self._sp_value(*args, **kwargs)
        raise NotImplementedError(f"{self.name} has no Spore implementation")

    _callee = _unbound  # until _bind: the bound method above

    # ``prim(x, y)`` calls the bound value itself: Python's call slot finds
    # this property, whose getter (C's attrgetter) returns the Value, and
    # calls that with the arguments -- no Python frame on the way from the
    # call to the C code of the primitive.  Subclasses may still define
    # their own __call__.
    __call__ = property(attrgetter("_callee"), doc="calls the primitive on its inputs")

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
