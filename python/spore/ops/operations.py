"""spore.ops.operations (``P``): MindSpore's primitive classes.

``P.Mul()(x, y)``, ``P.MatMul(transpose_a, transpose_b)``,
``P.ReduceSum(keep_dims)(x, axis)``, ``P.Softmax(axis)``, ...  Each class
binds its constructor arguments into one Spore callable: a primitive of
ops.def with keyword attributes, or a function of the API table with
keyword arguments (``_C.partial``), or -- for a primitive that is several
Spore calls (ArgMaxWithValue, StridedSlice, LayerNorm, ApplyMomentum, ...)
-- a small function of the GRAPH_MODE subset below, compiled by Spore.  The
instance is that value, so it runs the same C code in PYNATIVE_MODE (called
here) and GRAPH_MODE (embedded by the compiler).  Constructor arguments and
attribute names are MindSpore's; ``.shard(strategy)`` is accepted and kept.
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


# ---- composite primitives ---------------------------------------------------
#
# A MindSpore primitive that is several Spore calls (ArgMaxWithValue is an
# argmax and a max) is a small function in the subset GRAPH_MODE compiles,
# written below with the constructor's arguments first; the instance is that
# function compiled by Spore and partially applied to those arguments, so
# both modes run the one compiled body: PYNATIVE_MODE through the VM, GRAPH_MODE
# inlined into the Cell's graph.

import spore  # noqa: E402  (the composites name spore.prim.<primitive>)
from spore import ops  # noqa: E402  (spore.ops is initialized up to this module)

_SLICE_NONE = -9223372036854775808  # SP_SLICE_NONE: an omitted begin or end of the slice primitive


class _Composite(Primitive):
    """A primitive class whose call is the Spore function ``_fn`` with the
    constructor's arguments ``bound`` in front of the inputs."""
    _fn = None

    def _init(self, *bound, **attrs):
        super().__init__(type(self).__name__)
        self.attrs.update(attrs)
        from spore import _jit
        fn = _jit.compile_function(type(self)._fn)
        self._bind(_C.partial(fn, *bound) if bound else fn)


def _argmax_with_value(axis, keep_dims, x):
    return ops.argmax(x, axis, keep_dims), ops.max(x, axis, keep_dims)


def _argmin_with_value(axis, keep_dims, x):
    return ops.argmin(x, axis, keep_dims), ops.min(x, axis, keep_dims)


class ArgMaxWithValue(_Composite):
    """P.ArgMaxWithValue(axis=0, keep_dims=False)(x) -> (index, values)."""
    _fn = _argmax_with_value

    def __init__(self, axis=0, keep_dims=False):
        self._init(axis, bool(keep_dims), axis=axis, keep_dims=keep_dims)


class ArgMinWithValue(_Composite):
    """P.ArgMinWithValue(axis=0, keep_dims=False)(x) -> (index, values)."""
    _fn = _argmin_with_value

    def __init__(self, axis=0, keep_dims=False):
        self._init(axis, bool(keep_dims), axis=axis, keep_dims=keep_dims)


def _bias_add(x, bias):
    shape = (1, -1)
    for _ in range(x.ndim - 2):
        shape = shape + (1,)
    return x + ops.reshape(bias, shape)


class BiasAdd(_Composite):
    """P.BiasAdd(data_format="NCHW")(input_x, bias): bias along axis 1."""
    _fn = _bias_add

    def __init__(self, data_format="NCHW"):
        if data_format not in ("NCHW", "NCDHW"):
            raise NotImplementedError(f"BiasAdd: data_format {data_format!r} (Spore is NCHW)")
        self._init(data_format=data_format)


def _softmax_xent_with_logits(logits, labels):
    return -ops.sum(labels * ops.log_softmax(logits, -1), -1), ops.softmax(logits, -1) - labels


class SoftmaxCrossEntropyWithLogits(_Composite):
    """P.SoftmaxCrossEntropyWithLogits()(logits, labels) -> (loss [N], dlogits [N, C])
    with dense (probability) labels."""
    _fn = _softmax_xent_with_logits

    def __init__(self):
        self._init()


class SparseSoftmaxCrossEntropyWithLogits(_Bound):
    """P.SparseSoftmaxCrossEntropyWithLogits(is_grad=False)(logits, labels): the
    mean loss over the batch."""
    _qname = "ops.cross_entropy"

    def __init__(self, is_grad=False):
        if is_grad:
            raise NotImplementedError("SparseSoftmaxCrossEntropyWithLogits(is_grad=True): use spore.grad "
                                      "of the loss instead")
        self._init(reduction="mean")
        self.attrs["is_grad"] = False


def _split(axis, output_num, x):
    return ops.split(x, x.shape[axis] // output_num, axis)


class Split(_Composite):
    """P.Split(axis=0, output_num=1)(x) -> output_num equal parts along axis."""
    _fn = _split

    def __init__(self, axis=0, output_num=1):
        if int(output_num) < 1:
            raise ValueError(f"Split: output_num must be at least 1, not {output_num}")
        self._init(axis, int(output_num), axis=axis, output_num=output_num)


def _fill(dtype, shape, value):
    return ops.full(shape, value, dtype=dtype)


class Fill(_Composite):
    """P.Fill()(type, shape, value): a tensor of `shape` filled with `value`."""
    _fn = _fill

    def __init__(self):
        self._init()


def _dtype(x):
    return x.dtype


class DType(_Composite):
    """P.DType()(x): x's dtype."""
    _fn = _dtype

    def __init__(self):
        self._init()


def _strided_slice(bmask, emask, smask, x, begin, end, strides):
    n = len(begin)
    b = ()
    e = ()
    s = ()
    for i in range(x.ndim):
        if i < n:
            if smask[i]:
                b = b + (begin[i],)
                e = e + ((_SLICE_NONE if begin[i] == -1 else begin[i] + 1),)
                s = s + (1,)
            else:
                b = b + ((_SLICE_NONE if bmask[i] else begin[i]),)
                e = e + ((_SLICE_NONE if emask[i] else end[i]),)
                s = s + (strides[i],)
        else:
            b = b + (0,)
            e = e + (_SLICE_NONE,)
            s = s + (1,)
    y = ops.slice(x, begin=b, end=e, step=s)
    shape = ()
    for i in range(x.ndim):
        if i >= n or not smask[i]:
            shape = shape + (y.shape[i],)
    return ops.reshape(y, shape)


def _mask_bits(mask, name):
    if mask < 0:
        raise ValueError(f"StridedSlice: {name} must be >= 0, not {mask}")
    return tuple(bool((mask >> i) & 1) for i in range(8))


class StridedSlice(_Composite):
    """P.StridedSlice(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
    shrink_axis_mask=0)(x, begin, end, strides)."""
    _fn = _strided_slice

    def __init__(self, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0):
        if ellipsis_mask or new_axis_mask:
            raise NotImplementedError("StridedSlice: ellipsis_mask and new_axis_mask are not supported "
                                      "(index the tensor with ... or None instead)")
        self._init(_mask_bits(begin_mask, "begin_mask"), _mask_bits(end_mask, "end_mask"),
                   _mask_bits(shrink_axis_mask, "shrink_axis_mask"), begin_mask=begin_mask, end_mask=end_mask,
                   ellipsis_mask=ellipsis_mask, new_axis_mask=new_axis_mask, shrink_axis_mask=shrink_axis_mask)


def _slice(x, begin, size):
    e = ()
    for i in range(len(begin)):
        e = e + ((_SLICE_NONE if size[i] == -1 else begin[i] + size[i]),)
    return ops.slice(x, begin=begin, end=e)


class Slice(_Composite):
    """P.Slice()(x, begin, size): x[begin[i] : begin[i] + size[i]] per axis
    (size -1: to the end)."""
    _fn = _slice

    def __init__(self):
        self._init()


def _apply_momentum(use_nesterov, gradient_scale, variable, accumulation, learning_rate, gradient, momentum):
    g = gradient * gradient_scale
    accum = accumulation * momentum + g
    if use_nesterov:
        new = variable - (g * learning_rate + accum * momentum * learning_rate)
    else:
        new = variable - accum * learning_rate
    ops.assign(accumulation, accum)
    ops.assign(variable, new)
    return new


class ApplyMomentum(_Composite):
    """P.ApplyMomentum(use_nesterov=False, use_locking=False, gradient_scale=1.0)
    (variable, accumulation, learning_rate, gradient, momentum): in place,
    accumulation = accumulation*momentum + gradient; variable -= lr*accumulation
    (Nesterov: variable -= lr*(gradient + momentum*accumulation)).  Returns the
    new variable."""
    _fn = _apply_momentum

    def __init__(self, use_nesterov=False, use_locking=False, gradient_scale=1.0):
        self._init(bool(use_nesterov), float(gradient_scale), use_nesterov=use_nesterov,
                   use_locking=use_locking, gradient_scale=gradient_scale)


def _adam(use_nesterov, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, gradient):
    new_m = m + (gradient - m) * (1 - beta1)
    new_v = v + (gradient * gradient - v) * (1 - beta2)
    lr_t = lr * ops.sqrt(1 - beta2_power) / (1 - beta1_power)
    if use_nesterov:
        new_var = var - lr_t * (new_m * beta1 + (1 - beta1) * gradient) / (ops.sqrt(new_v) + epsilon)
    else:
        new_var = var - lr_t * new_m / (ops.sqrt(new_v) + epsilon)
    ops.assign(m, new_m)
    ops.assign(v, new_v)
    ops.assign(var, new_var)
    return new_var, new_m, new_v


class Adam(_Composite):
    """P.Adam(use_locking=False, use_nesterov=False)(var, m, v, beta1_power,
    beta2_power, lr, beta1, beta2, epsilon, gradient): one Adam step in place
    (MindSpore's formula); returns (var, m, v)."""
    _fn = _adam

    def __init__(self, use_locking=False, use_nesterov=False):
        self._init(bool(use_nesterov), use_locking=use_locking, use_nesterov=use_nesterov)


def _layer_norm(axis, epsilon, x, gamma, beta):
    y, mean, rstd = spore.prim.layer_norm(x, gamma, beta, axis=axis, epsilon=epsilon)
    first = axis if axis >= 0 else axis + x.ndim
    shape = ()
    for i in range(x.ndim):
        shape = shape + ((x.shape[i] if i < first else 1),)
    return y, ops.reshape(mean, shape), ops.reshape(1.0 / (rstd * rstd) - epsilon, shape)


class LayerNorm(_Composite):
    """P.LayerNorm(begin_norm_axis=1, begin_params_axis=1, epsilon=1e-7)(x, gamma,
    beta) -> (y, mean, variance), mean and variance keeping the normalized axes
    as 1s."""
    _fn = _layer_norm

    def __init__(self, begin_norm_axis=1, begin_params_axis=1, epsilon=1e-7):
        if begin_params_axis != begin_norm_axis and not (begin_norm_axis == -1 and begin_params_axis == -1):
            raise NotImplementedError("LayerNorm: begin_params_axis must equal begin_norm_axis")
        self._init(int(begin_norm_axis), float(epsilon), begin_norm_axis=begin_norm_axis,
                   begin_params_axis=begin_params_axis, epsilon=epsilon)


def _batch_norm(training, epsilon, momentum, x, scale, bias, mean, variance):
    y, save_mean, save_rstd = spore.prim.batch_norm(x, scale, bias, mean, variance, training=training,
                                                    momentum=momentum, epsilon=epsilon)
    var = 1.0 / (save_rstd * save_rstd) - epsilon
    return y, save_mean, var, save_mean, var


class BatchNorm(_Composite):
    """P.BatchNorm(is_training=False, epsilon=1e-5, momentum=0.1, data_format="NCHW")
    (input_x, scale, bias, mean, variance) -> (y, batch_mean, batch_variance,
    reserve_space_1, reserve_space_2).  In training the running mean and
    variance (Parameters) are updated in place:
    running = (1 - momentum) * running + momentum * batch."""
    _fn = _batch_norm

    def __init__(self, is_training=False, epsilon=1e-5, momentum=0.1, data_format="NCHW"):
        if data_format != "NCHW":
            raise NotImplementedError(f"BatchNorm: data_format {data_format!r} (Spore is NCHW)")
        self._init(int(bool(is_training)), float(epsilon), float(momentum), is_training=is_training,
                   epsilon=epsilon, momentum=momentum, data_format=data_format)


def _add_n(inputs):
    r = inputs[0]
    for i in range(1, len(inputs)):
        r = r + inputs[i]
    return r


class AddN(_Composite):
    """P.AddN()(inputs): the elementwise sum of a tuple or list of tensors."""
    _fn = _add_n

    def __init__(self):
        self._init()


def _squared_difference(x, y):
    return ops.square(x - y)


class SquaredDifference(_Composite):
    """P.SquaredDifference()(x, y) = (x - y)**2."""
    _fn = _squared_difference

    def __init__(self):
        self._init()


def _l2_normalize(axis, epsilon, x):
    return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis, True), epsilon))


class L2Normalize(_Composite):
    """P.L2Normalize(axis=0, epsilon=1e-4)(x) = x / sqrt(max(sum(x**2, axis), epsilon))."""
    _fn = _l2_normalize

    def __init__(self, axis=0, epsilon=1e-4):
        self._init(axis, float(epsilon), axis=axis, epsilon=epsilon)


def _hswish(x):
    return x * ops.clamp(x + 3.0, 0.0, 6.0) / 6.0


def _hsigmoid(x):
    return ops.clamp(x + 3.0, 0.0, 6.0) / 6.0


def _mish(x):
    return x * ops.tanh(ops.softplus(x))


def _depend(value, expr):
    return value


def _composite(cls_name, fn, doc):
    class C(_Composite):
        _fn = fn

        def __init__(self):
            self._init()
    C.__name__ = C.__qualname__ = cls_name
    C.__doc__ = doc
    return C


HSwish = _composite("HSwish", _hswish, "P.HSwish()(x) = x * relu6(x + 3) / 6.")
HSigmoid = _composite("HSigmoid", _hsigmoid, "P.HSigmoid()(x) = relu6(x + 3) / 6.")
Mish = _composite("Mish", _mish, "P.Mish()(x) = x * tanh(softplus(x)).")
Depend = _composite("Depend", _depend, "P.Depend()(value, expr): value (Spore orders side effects itself).")


# ---- more one-call primitives -------------------------------------------------

for _name, _q in {"Ones": "ops.ones", "Zeros": "ops.zeros", "Assign": "ops.assign", "Softplus": "ops.softplus",
                  "Expm1": "ops.expm1", "GatherD": "ops.gather_elements", "Flatten": "ops.flatten"}.items():
    globals()[_name] = _simple(_name, _q)
del _name, _q

ReduceAll = _reduce("ReduceAll", "ops.all", "keep_dims")
ReduceAny = _reduce("ReduceAny", "ops.any", "keep_dims")


class ReLU6(_Bound):
    """P.ReLU6()(x) = min(max(x, 0), 6)."""
    _qname = "ops.clamp"

    def __init__(self):
        self._init(min=0.0, max=6.0)


class TopK(_Bound):
    """P.TopK(sorted=True)(input_x, k) -> (values, indices) along the last axis."""
    _qname = "ops.topk"

    def __init__(self, sorted=True):  # noqa: A002  (MindSpore's name)
        self._init()
        self.attrs["sorted"] = sorted


class Sort(_Bound):
    """P.Sort(axis=-1, descending=False)(x) -> (values, indices)."""
    _qname = "ops.sort"

    def __init__(self, axis=-1, descending=False):
        self._init(axis=axis, descending=bool(descending))


class CumSum(_Bound):
    """P.CumSum(exclusive=False, reverse=False)(x, axis)."""
    _qname = "ops.cumsum"

    def __init__(self, exclusive=False, reverse=False):
        if exclusive or reverse:
            raise NotImplementedError("CumSum: exclusive and reverse are not supported")
        self._init()
        self.attrs.update(exclusive=exclusive, reverse=reverse)


def _pair(v, name):
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) == 4:  # MindSpore's (1, 1, h, w)
        v = v[2:]
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a tuple of 2 or 4 ints, not {v}")
    return v


def _pad_mode(pad_mode, cls):
    m = str(pad_mode).lower()
    if m not in ("valid", "same", "pad"):
        raise ValueError(f"{cls}: pad_mode must be 'valid', 'same' or 'pad', not {pad_mode!r}")
    return m


class Conv2D(_Bound):
    """P.Conv2D(out_channel, kernel_size, mode=1, pad_mode="valid", pad=0, stride=1,
    dilation=1, group=1, data_format="NCHW")(x, weight)."""
    _prim = "conv2d"

    def __init__(self, out_channel, kernel_size, mode=1, pad_mode="valid", pad=0, stride=1, dilation=1,
                 group=1, data_format="NCHW"):
        if data_format != "NCHW":
            raise NotImplementedError(f"Conv2D: data_format {data_format!r} (Spore is NCHW)")
        m = _pad_mode(pad_mode, "Conv2D")
        pad = (pad,) if isinstance(pad, int) else tuple(pad)
        if m != "pad" and any(pad):
            raise ValueError(f"Conv2D: pad must be 0 when pad_mode is {pad_mode!r}")
        self._init(stride=_pair(stride, "Conv2D stride"), dilation=_pair(dilation, "Conv2D dilation"),
                   pad_mode=m, padding=pad, groups=int(group))
        self.attrs.update(out_channel=out_channel, kernel_size=kernel_size, mode=mode, data_format=data_format)


class _Pool(_Bound):
    def __init__(self, kernel_size=1, strides=1, pad_mode="valid", data_format="NCHW"):
        if data_format != "NCHW":
            raise NotImplementedError(f"{type(self).__name__}: data_format {data_format!r} (Spore is NCHW)")
        m = _pad_mode(pad_mode, type(self).__name__)
        if m == "pad":
            raise ValueError(f"{type(self).__name__}: pad_mode must be 'valid' or 'same'")
        kw = dict(kernel_size=_pair(kernel_size, "kernel_size"), stride=_pair(strides, "strides"), pad_mode=m)
        if self._prim == "avg_pool2d":
            kw["count_include_pad"] = 0  # "same" averages over the cells inside the input
        self._init(**kw)
        self.attrs["data_format"] = data_format


class MaxPool(_Pool):
    """P.MaxPool(kernel_size=1, strides=1, pad_mode="valid", data_format="NCHW")(x)."""
    _prim = "max_pool2d"


class AvgPool(_Pool):
    """P.AvgPool(kernel_size=1, strides=1, pad_mode="valid", data_format="NCHW")(x)."""
    _prim = "avg_pool2d"
