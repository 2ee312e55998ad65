"""BatchNorm1d, BatchNorm2d and LayerNorm (MindSpore 2.x).

Batch normalization keeps two non-trainable Parameters, ``moving_mean`` and
``moving_variance``, next to the trainable ``gamma`` and ``beta``.  In
training mode (``set_train()``) a call normalizes with the batch's own
statistics and updates the moving ones IN PLACE inside Spore's batch_norm
primitive -- in PYNATIVE_MODE and inside a compiled GRAPH_MODE step alike,
so there is no Python-side bookkeeping to forget.  In evaluation mode it
normalizes with the moving statistics and changes nothing.
use_batch_statistics=True/False overrides the mode either way.

The one trap is momentum.  MindSpore's momentum is the weight of the OLD
moving value (default 0.9):
    moving = momentum * moving + (1 - momentum) * batch_statistic,
the opposite of PyTorch's (default 0.1).  The primitive follows PyTorch, so
this file hands it 1 - momentum.  The moving variance takes the batch's
unbiased variance; normalization uses the biased one (both frameworks).

Both layers bind their primitive (batch_norm, layer_norm of ops.def) with
its attributes once in __init__ and take output 0 (y) of the primitive's
(y, mean, rstd): the settings are fixed per layer, and the call is then the
same value in both modes.

LayerNorm normalizes over the axes from begin_norm_axis to the end and
scales by gamma/beta of shape normalized_shape, which must equal the input's
trailing shape from begin_params_axis; when the two axes agree (the usual
case) one layer_norm primitive does everything, otherwise the scale and
shift are a broadcast multiply-add after an unscaled layer_norm.
"""
from spore import _C, ops
from spore.common import dtype as mstype
from spore.nn.cell import Cell
from spore.nn.layer.basic import _check_int, _check_bool, _check_float, _check_dtype, _make_param

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Cell):
    _cls = "BatchNorm"

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones", beta_init="zeros",
                 moving_mean_init="zeros", moving_var_init="ones", use_batch_statistics=None,
                 dtype=mstype.float32):
        super().__init__()
        cls = self._cls
        self.num_features = _check_int(cls, "num_features", num_features, 1)
        self.eps = _check_float(cls, "eps", eps, 0.0, low_open=True)
        self.momentum = _check_float(cls, "momentum", momentum, 0.0, 1.0)
        self.affine = _check_bool(cls, "affine", affine)
        if use_batch_statistics is not None:
            _check_bool(cls, "use_batch_statistics", use_batch_statistics)
        self.use_batch_statistics = use_batch_statistics
        dtype = _check_dtype(cls, "dtype", dtype)
        shape = (self.num_features,)
        self.moving_mean = _make_param(cls, "moving_mean_init", moving_mean_init, shape, dtype, "moving_mean",
                                       requires_grad=False)
        self.moving_variance = _make_param(cls, "moving_var_init", moving_var_init, shape, dtype,
                                           "moving_variance", requires_grad=False)
        self.gamma = _make_param(cls, "gamma_init", gamma_init, shape, dtype, "gamma", requires_grad=affine)
        self.beta = _make_param(cls, "beta_init", beta_init, shape, dtype, "beta", requires_grad=affine)
        # construct's compile-time switches (None cannot be a graph constant)
        self._follow_mode = use_batch_statistics is None
        self._batch_stats = bool(use_batch_statistics)
        # the primitive itself (y, batch mean, batch rstd), one per mode
        bn = _C.prim("batch_norm")
        self._bn_batch = _C.partial(bn, training=1, momentum=1.0 - self.momentum, epsilon=self.eps)
        self._bn_moving = _C.partial(bn, training=0, momentum=1.0 - self.momentum, epsilon=self.eps)

    def construct(self, x):
        if self._follow_mode:
            if self.training:
                return self._bn_batch(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
            return self._bn_moving(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
        if self._batch_stats:
            return self._bn_batch(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
        return self._bn_moving(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]

    def extend_repr(self):
        return (f"num_features={self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"gamma={self.gamma!r}, beta={self.beta!r}, moving_mean={self.moving_mean!r}, "
                f"moving_variance={self.moving_variance!r}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input over every axis but C:
    BatchNorm1d(num_features, eps=1e-5, momentum=0.9, affine=True,
    gamma_init='ones', beta_init='zeros', moving_mean_init='zeros',
    moving_var_init='ones', use_batch_statistics=None, dtype=float32)."""
    _cls = "BatchNorm1d"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input per channel C; the same
    arguments as BatchNorm1d (data_format 'NCHW' only)."""
    _cls = "BatchNorm2d"

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones", beta_init="zeros",
                 moving_mean_init="zeros", moving_var_init="ones", use_batch_statistics=None, data_format="NCHW",
                 dtype=mstype.float32):
        if data_format != "NCHW":
            raise ValueError(f"BatchNorm2d: 'data_format' must be 'NCHW', got {data_format!r}")
        super().__init__(num_features, eps, momentum, affine, gamma_init, beta_init, moving_mean_init,
                         moving_var_init, use_batch_statistics, dtype)


class LayerNorm(Cell):
    """Layer normalization: LayerNorm(normalized_shape, begin_norm_axis=-1,
    begin_params_axis=-1, gamma_init='ones', beta_init='zeros',
    epsilon=1e-7, dtype=float32).  gamma and beta have shape
    normalized_shape (a tuple or list)."""

    def __init__(self, normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, gamma_init="ones",
                 beta_init="zeros", epsilon=1e-7, dtype=mstype.float32):
        super().__init__()
        cls = "LayerNorm"
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"{cls}: 'normalized_shape' must be a tuple or list of ints, "
                            f"got {type(normalized_shape).__name__}")
        self.normalized_shape = tuple(_check_int(cls, "normalized_shape", s, 1) for s in normalized_shape)
        if not self.normalized_shape:
            raise ValueError(f"{cls}: 'normalized_shape' must not be empty")
        self.begin_norm_axis = _check_int(cls, "begin_norm_axis", begin_norm_axis)
        self.begin_params_axis = _check_int(cls, "begin_params_axis", begin_params_axis)
        self.epsilon = _check_float(cls, "epsilon", epsilon, 0.0)
        dtype = _check_dtype(cls, "dtype", dtype)
        self.gamma = _make_param(cls, "gamma_init", gamma_init, self.normalized_shape, dtype, "gamma")
        self.beta = _make_param(cls, "beta_init", beta_init, self.normalized_shape, dtype, "beta")
        self._fused = self.begin_norm_axis == self.begin_params_axis
        self._layer_norm = _C.partial(_C.prim("layer_norm"), axis=self.begin_norm_axis, epsilon=self.epsilon)

    def construct(self, x):
        if self._fused:
            return self._layer_norm(x, self.gamma, self.beta)[0]
        y = ops.layer_norm(x, x.shape[self.begin_norm_axis:], None, None, self.epsilon)
        return y * self.gamma + self.beta

    def extend_repr(self):
        return (f"normalized_shape={self.normalized_shape}, begin_norm_axis={self.begin_norm_axis}, "
                f"begin_params_axis={self.begin_params_axis}, gamma={self.gamma!r}, beta={self.beta!r}")
