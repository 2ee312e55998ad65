"""Conv2d: 2-D convolution over NCHW input (MindSpore 2.x).

Conv2d(in_channels, out_channels, kernel_size, stride=1, pad_mode='same',
padding=0, dilation=1, group=1, has_bias=False, weight_init=None,
bias_init=None, data_format='NCHW', dtype=float32) runs Spore's conv2d
primitive (ops.conv2d), whose CPU and CUDA kernels implement all three of
MindSpore's padding modes:

* 'same':  output size ceil(in / stride); the padding is split with the
  extra row/column at the bottom/right (TensorFlow's and MindSpore's rule;
  PyTorch's padding='same' puts it the same way for odd totals);
* 'valid': no padding;
* 'pad':   explicit ``padding``: an int, (rows, cols) or (top, bottom,
  left, right).

The weight has shape (out_channels, in_channels / group, kh, kw) and by
default HeUniform(sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
fan_in = in_channels / group * kh * kw; the bias, when has_bias, is
Uniform(1/sqrt(fan_in)) -- MindSpore's defaults, which equal PyTorch's.

All arguments are checked in __init__ (padding other than 0 without
pad_mode='pad' is an error, as in MindSpore; group must divide both
channel counts).  The bias, being optional, goes through the alias scheme
described in basic.py.
"""
import math
import numbers

from spore import ops
from spore.common import dtype as mstype
from spore.common.initializer import HeUniform, Uniform
from spore.nn.layer.basic import _Layer, _check_int, _check_bool, _check_pair, _check_dtype, _make_param

__all__ = ["Conv2d"]


def _check_padding(cls, padding):
    """An int >= 0, or a tuple of 2 or 4 ints >= 0, as a tuple of 4
    (top, bottom, left, right)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        padding = (padding,) * 4
    if not isinstance(padding, (tuple, list)) or len(padding) not in (2, 4) or \
            not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in padding):
        raise TypeError(f"{cls}: 'padding' must be an int or a tuple of 2 or 4 ints, got {padding!r}")
    if any(v < 0 for v in padding):
        raise ValueError(f"{cls}: 'padding' must not be negative, got {tuple(padding)}")
    if len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    return tuple(int(v) for v in padding)


def _check_pad_mode(cls, pad_mode, padding):
    if not isinstance(pad_mode, str) or pad_mode.lower() not in ("same", "valid", "pad"):
        raise ValueError(f"{cls}: 'pad_mode' must be 'same', 'valid' or 'pad', got {pad_mode!r}")
    pad_mode = pad_mode.lower()
    if pad_mode != "pad" and any(padding):
        raise ValueError(f"{cls}: 'padding' must be 0 when 'pad_mode' is not 'pad', got {padding} "
                         f"with pad_mode '{pad_mode}'")
    return pad_mode


class Conv2d(_Layer):
    """2-D convolution, NCHW: input (N, in_channels, H, W) -> (N,
    out_channels, Ho, Wo)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0,
                 dilation=1, group=1, has_bias=False, weight_init=None, bias_init=None, data_format="NCHW",
                 dtype=mstype.float32):
        super().__init__()
        cls = "Conv2d"
        self.in_channels = _check_int(cls, "in_channels", in_channels, 1)
        self.out_channels = _check_int(cls, "out_channels", out_channels, 1)
        self.kernel_size = _check_pair(cls, "kernel_size", kernel_size)
        self.stride = _check_pair(cls, "stride", stride)
        self.dilation = _check_pair(cls, "dilation", dilation)
        self.padding = _check_padding(cls, padding)
        self.pad_mode = _check_pad_mode(cls, pad_mode, self.padding)
        self.group = _check_int(cls, "group", group, 1)
        if self.in_channels % self.group or self.out_channels % self.group:
            raise ValueError(f"{cls}: 'group' ({self.group}) must divide both 'in_channels' "
                             f"({self.in_channels}) and 'out_channels' ({self.out_channels})")
        self.has_bias = _check_bool(cls, "has_bias", has_bias)
        if data_format != "NCHW":
            raise ValueError(f"{cls}: 'data_format' must be 'NCHW' (the only layout Spore's kernels take), "
                             f"got {data_format!r}")
        self.data_format = data_format
        dtype = _check_dtype(cls, "dtype", dtype)
        shape = (self.out_channels, self.in_channels // self.group) + self.kernel_size
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = _make_param(cls, "weight_init", weight_init, shape, dtype, "weight")
        self.bias = None
        if self.has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(shape[1] * shape[2] * shape[3]))
            self.bias = _make_param(cls, "bias_init", bias_init, (self.out_channels,), dtype, "bias")
        # kept for repr only (a Parameter given as init must not register)
        self._alias("weight_init", weight_init)
        self._alias("bias_init", bias_init)
        self._alias("_conv", self._conv_bias if self.has_bias else self._conv_no_bias)

    def _conv_bias(self, x):
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.pad_mode, self.padding, self.dilation,
                          self.group)

    def _conv_no_bias(self, x):
        return ops.conv2d(x, self.weight, None, self.stride, self.pad_mode, self.padding, self.dilation,
                          self.group)

    def construct(self, x):
        return self._conv(x)

    def extend_repr(self):
        return (f"input_channels={self.in_channels}, output_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, pad_mode={self.pad_mode}, "
                f"padding={self.padding}, dilation={self.dilation}, group={self.group}, "
                f"has_bias={self.has_bias}, weight_init={self.weight_init}, bias_init={self.bias_init}, "
                f"format={self.data_format}")
