"""spore.ops.operations (``P``): MindSpore's primitive classes.

``P.Mul()(x, y)``, ``P.MatMul(transpose_a, transpose_b)``,
``P.ReduceSum(keep_dims)(x, axis)``, ``P.Softmax(axis)``, ...  Each class
binds its constructor arguments into one Spore callable: a primitive of
ops.def with keyword attributes, or a function of the API table with
keyword arguments (``_C.partial``).  The instance is that value, so it runs
the same C code in PYNATIVE_MODE (called here) and GRAPH_MODE (embedded by
the compiler).  ``.shard(strategy)`` is accepted and kept.
"""
from spore import _C
from spore.ops.primitive import Primitive

_api = lambda q: _C.value("api", q)  # noqa: E731


def _simple(cls_name, qname):
    class P(Primitive):
        def __init__(self):
            super().__init__(cls_name)
            self._bind(_api(qname))
    P.__name__ = P.__qualname__ = cls_name
    P.__doc__ = f"P.{cls_name}()(...): {qname}."
    return P


_SIMPLE = {
    "Add": "ops.add", "Sub": "ops.sub", "Mul": "ops.mul", "RealDiv": "ops.div", "Div": "ops.div",
    "FloorDiv": "ops.floor_divide", "Mod": "ops.remainder", "FloorMod": "ops.remainder",
    "Pow": "ops.pow", "Maximum": "ops.maximum", "Minimum": "ops.minimum", "Equal": "ops.equal",
    "NotEqual": "ops.not_equal", "Less": "ops.less", "LessEqual": "ops.less_equal",
    "Greater": "ops.greater", "GreaterEqual": "ops.greater_equal", "LogicalAnd": "ops.logical_and",
    "LogicalOr": "ops.logical_or", "LogicalNot": "ops.logical_not", "Neg": "ops.neg",
    "Abs": "ops.abs", "Exp": "ops.exp", "Log": "ops.log", "Log1p": "ops.log1p", "Sqrt": "ops.sqrt",
    "Rsqrt": "ops.rsqrt", "Square": "ops.square", "Reciprocal": "ops.reciprocal", "Sin": "ops.sin",
    "Cos": "ops.cos", "Tanh": "ops.tanh", "Sigmoid": "ops.sigmoid", "ReLU": "ops.relu",
    "SiLU": "ops.silu", "Erf": "ops.erf", "Floor": "ops.floor", "Ceil": "ops.ceil",
    "Round": "ops.round", "Sign": "ops.sign", "Select": "ops.where", "Cast": "ops.cast",
    "Reshape": "ops.reshape", "Transpose": "ops.transpose", "Shape": "ops.shape", "Rank": "ops.rank",
    "Size": "ops.size", "Tile": "ops.tile", "BroadcastTo": "ops.broadcast_to",
    "ExpandDims": "ops.expand_dims", "ZerosLike": "ops.zeros_like", "OnesLike": "ops.ones_like",
    "IsNan": "ops.isnan", "IsFinite": "ops.isfinite", "Atan2": "ops.atan2", "StopGradient": "ops.stop_gradient",
    "Identity": "ops.stop_gradient",
}
for _name, _q in _SIMPLE.items():
    globals()[_name] = _simple(_name, _q)
TensorAdd = Add
del _name, _q


class _Bound(Primitive):
    """A primitive class whose constructor arguments become keyword
    arguments of one API function (``_qname``) or attributes of one
    primitive of ops.def (``_prim``)."""
    _qname = None
    _prim = None

    def _init(self, **kw):
        super().__init__(type(self).__name__)
        self.attrs.update(kw)
        fn = _C.prim(self._prim) if self._prim else _api(self._qname)
        self._bind(_C.partial(fn, **kw) if kw else fn)


class MatMul(_Bound):
    """P.MatMul(transpose_a=False, transpose_b=False)(x, y)."""
    _prim = "matmul"

    def __init__(self, transpose_a=False, transpose_b=False):
        self._init(transpose_a=int(bool(transpose_a)), transpose_b=int(bool(transpose_b)))


class BatchMatMul(MatMul):
    """P.BatchMatMul(transpose_a=False, transpose_b=False)(x, y)."""


class Softmax(_Bound):
    _qname = "ops.softmax"

    def __init__(self, axis=-1):
        self._init(axis=axis[0] if isinstance(axis, (tuple, list)) and len(axis) == 1 else axis)


class LogSoftmax(_Bound):
    _qname = "ops.log_softmax"

    def __init__(self, axis=-1):
        self._init(axis=axis)


def _reduce(cls_name, qname, keyword):
    class R(Primitive):
        def __init__(self, keep_dims=False):
            super().__init__(cls_name)
            self.attrs["keep_dims"] = keep_dims
            # MindSpore: axis=() reduces every axis; Spore's None does
            fn = _C.partial(_api(qname), **{keyword: bool(keep_dims)})
            self._bind(fn)

        def __call__(self, x, axis=()):
            if isinstance(axis, (tuple, list)) and len(axis) == 0:
                axis = None
            return self._sp_value(x, axis)
    R.__name__ = R.__qualname__ = cls_name
    R.__doc__ = f"P.{cls_name}(keep_dims=False)(x, axis=()): {qname}."
    return R


ReduceSum = _reduce("ReduceSum", "ops.sum", "keepdim")
ReduceMean = _reduce("ReduceMean", "ops.mean", "keep_dims")
ReduceMax = _reduce("ReduceMax", "ops.max", "keepdims")
ReduceMin = _reduce("ReduceMin", "ops.min", "keepdims")
ReduceProd = _reduce("ReduceProd", "ops.prod", "keep_dims")


class Concat(_Bound):
    _qname = "ops.concat"

    def __init__(self, axis=0):
        self._init(axis=axis)


class Stack(_Bound):
    _qname = "ops.stack"

    def __init__(self, axis=0):
        self._init(axis=axis)


class Argmax(_Bound):
    _qname = "ops.argmax"

    def __init__(self, axis=-1, output_type=None):
        self._init(axis=axis)


class Argmin(_Bound):
    _qname = "ops.argmin"

    def __init__(self, axis=-1, output_type=None):
        self._init(axis=axis)


class Gather(_Bound):
    """P.Gather()(params, indices, axis)."""
    _qname = "ops.gather"

    def __init__(self, batch_dims=0):
        self._init()


class OneHot(_Bound):
    """P.OneHot(axis=-1)(indices, depth, on_value, off_value)."""
    _qname = "ops.one_hot"

    def __init__(self, axis=-1):
        self._init(axis=axis)


class GeLU(_Bound):
    _qname = "ops.gelu"

    def __init__(self):
        self._init()


class Squeeze(_Bound):
    _qname = "ops.squeeze"

    def __init__(self, axis=()):
        self._init(axis=None if axis == () else axis)


class Dropout(_Bound):
    _qname = "ops.dropout"

    def __init__(self, keep_prob=0.5, Seed0=0, Seed1=0):
        self._init(p=1.0 - keep_prob)


class Print(Primitive):
    """P.Print()(*values): prints them (in both modes)."""

    def __init__(self):
        super().__init__("Print")

    def __call__(self, *args):
        print(*args)
