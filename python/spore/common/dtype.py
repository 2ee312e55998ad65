"""Spore's dtypes, named as MindSpore names them (``spore.float32``,
``mstype.float32`` through ``spore.common.dtype``).

A dtype object only names one of the C library's dtypes (its ``_sp_dtype``
id); every conversion and promotion happens in C.
"""
from spore import _C

__all__ = ["Type", "float16", "float32", "float64", "bfloat16", "int8", "uint8", "int32",
           "int64", "bool_", "float_", "int_", "half", "single", "double", "pytype_to_dtype",
           "dtype_to_nptype"]


class Type:
    """A dtype: ``spore.float32`` and friends.  Compare with ``==``."""

    __slots__ = ("_sp_dtype", "_name")

    def __init__(self, sp_id, name):
        self._sp_dtype = sp_id
        self._name = name

    def __repr__(self):
        return self._name

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Type) and other._sp_dtype == self._sp_dtype

    def __hash__(self):
        return hash(self._sp_dtype)

    def __reduce__(self):
        return (_by_id, (self._sp_dtype,))


def _make(c_name, ms_name):
    return Type(getattr(_C, "DT_" + c_name), ms_name)


float32 = _make("float32", "Float32")
float64 = _make("float64", "Float64")
float16 = _make("float16", "Float16")
bfloat16 = _make("bfloat16", "BFloat16")
int8 = _make("int8", "Int8")
uint8 = _make("uint8", "UInt8")
int32 = _make("int32", "Int32")
int64 = _make("int64", "Int64")
bool_ = _make("bool", "Bool")
float_, single, half, double, int_ = float32, float32, float16, float64, int64

_ALL = (float32, float64, float16, bfloat16, int8, uint8, int32, int64, bool_)
_BY_ID = {t._sp_dtype: t for t in _ALL}
assert len(_BY_ID) == _C.DTYPE_COUNT


def _by_id(i):
    return _BY_ID[i]


def _table():
    """The dtype objects indexed by the C library's ids (for _C._register)."""
    return tuple(_BY_ID[i] for i in range(_C.DTYPE_COUNT))


def pytype_to_dtype(obj):
    """The Spore dtype of a Python type or numpy dtype (``float`` -> float32)."""
    if isinstance(obj, Type):
        return obj
    import numpy as np
    if obj is bool:
        return bool_
    if obj is int:
        return int64
    if obj is float:
        return float32
    name = np.dtype(obj).name
    for t in _ALL:
        if repr(t).lower() == name or (t is bool_ and name == "bool"):
            return t
    raise TypeError(f"no Spore dtype for {obj!r}")


def dtype_to_nptype(t):
    """The numpy type of a Spore dtype (bfloat16 -> float32, numpy has none)."""
    import numpy as np
    return {float32: np.float32, float64: np.float64, float16: np.float16, bfloat16: np.float32,
            int8: np.int8, uint8: np.uint8, int32: np.int32, int64: np.int64, bool_: np.bool_}[t]
