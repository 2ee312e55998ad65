"""spore.ops: the functional API (``ops.add``, ``ops.matmul``, ``ops.relu``, ...).

Every function is generated from the ``ops.*`` rows of the runtime's API
table (src/runtime/api.def): the names, parameter names, defaults and
semantics are those of the source language, because the call goes to the
same C function.  Each function carries ``_sp_value``, the Spore value
GRAPH_MODE compiles a reference to it into.
"""
from spore import _C

__all__ = []


# Each function is the C object _C.value("api", qname) (an ApiFunction,
# python/spore/_C/apifn.c): calling it converts the arguments and calls the
# API table directly, with no Python frame in between; it has __name__,
# __doc__ and _sp_value (itself) like a function.
for _q in _C.api_names():
    if _q.startswith("ops."):
        _n = _q[4:]
        globals()[_n] = _C.value("api", _q)
        __all__.append(_n)


def _primitive(name):
    prim = _C.prim(name)

    def fn(*args, **kwargs):
        return prim(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"ops.{name}: Spore's primitive {name} (src/ops/ops.def), called directly."
    fn._sp_value = prim
    return fn


# every primitive is reachable as ops.<name>, as in the source language
for _n in _C.op_names():
    if _n not in globals():
        globals()[_n] = _primitive(_n)
        __all__.append(_n)
del _q, _n

from spore.ops.composite import GradOperation  # noqa: E402  (replaces the table's factory)
from spore.ops import operations, functional  # noqa: E402
from spore.ops.primitive import Primitive, constexpr  # noqa: E402

__all__ += ["operations", "functional", "Primitive", "constexpr"]
