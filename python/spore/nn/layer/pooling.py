"""MaxPool2d and AvgPool2d over NCHW input (MindSpore 2.x).

MaxPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0, dilation=1,
return_indices=False, ceil_mode=False, data_format='NCHW') and
AvgPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0,
ceil_mode=False, count_include_pad=True, divisor_override=None,
data_format='NCHW').  Note MindSpore's defaults: a 1x1 window and stride 1,
not PyTorch's stride = kernel_size.

Each layer binds its settings into one Spore primitive value (max_pool2d or
avg_pool2d of src/ops/ops.def with its attributes) in __init__; construct
calls it, so PYNATIVE_MODE runs the C kernel and GRAPH_MODE embeds the same
primitive.  The primitive takes the three padding modes:

* 'valid': no padding; 'pad': explicit padding (an int, (rows, cols) or
  (top, bottom, left, right)), at most half the window, as PyTorch requires;
* 'same': output ceil(in / stride), padding split with the extra at the
  bottom/right.  Padded cells never win a max, and an average in 'same'
  mode divides by the number of real cells (TensorFlow's and MindSpore's
  rule); count_include_pad applies to 'pad' mode.

What the kernels do not do is refused in __init__ with a ValueError:
dilation other than 1, return_indices, divisor_override.
"""
from spore import _C
from spore.nn.cell import Cell
from spore.nn.layer.basic import _check_bool, _check_pair
from spore.nn.layer.conv import _check_padding, _check_pad_mode

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(Cell):
    _prim = None

    def __init__(self, cls, kernel_size, stride, pad_mode, padding, ceil_mode, data_format, **attrs):
        super().__init__()
        self.kernel_size = _check_pair(cls, "kernel_size", kernel_size)
        self.stride = _check_pair(cls, "stride", stride)
        self.padding = _check_padding(cls, padding)
        self.pad_mode = _check_pad_mode(cls, pad_mode, self.padding)
        half = (self.kernel_size[0] // 2, self.kernel_size[0] // 2, self.kernel_size[1] // 2,
                self.kernel_size[1] // 2)
        if any(p > h for p, h in zip(self.padding, half)):
            raise ValueError(f"{cls}: 'padding' {self.padding} must be at most half of 'kernel_size' "
                             f"{self.kernel_size}")
        self.ceil_mode = _check_bool(cls, "ceil_mode", ceil_mode)
        if data_format != "NCHW":
            raise ValueError(f"{cls}: 'data_format' must be 'NCHW', got {data_format!r}")
        self.data_format = data_format
        self._pool = _C.partial(_C.prim(self._prim), kernel_size=self.kernel_size, stride=self.stride,
                                pad_mode=self.pad_mode, padding=self.padding, ceil_mode=int(self.ceil_mode),
                                **attrs)

    def construct(self, x):
        return self._pool(x)

    def extend_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, pad_mode={self.pad_mode}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_Pool2d):
    """The maximum of each window."""
    _prim = "max_pool2d"

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1, return_indices=False,
                 ceil_mode=False, data_format="NCHW"):
        cls = "MaxPool2d"
        if _check_pair(cls, "dilation", dilation) != (1, 1):
            raise ValueError(f"{cls}: 'dilation' other than 1 is not supported, got {dilation!r}")
        if _check_bool(cls, "return_indices", return_indices):
            raise ValueError(f"{cls}: 'return_indices=True' is not supported")
        super().__init__(cls, kernel_size, stride, pad_mode, padding, ceil_mode, data_format)


class AvgPool2d(_Pool2d):
    """The mean of each window."""
    _prim = "avg_pool2d"

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, data_format="NCHW"):
        cls = "AvgPool2d"
        _check_bool(cls, "count_include_pad", count_include_pad)
        if divisor_override is not None:
            raise ValueError(f"{cls}: 'divisor_override' is not supported, got {divisor_override!r}")
        include = count_include_pad and isinstance(pad_mode, str) and pad_mode.lower() == "pad"
        super().__init__(cls, kernel_size, stride, pad_mode, padding, ceil_mode, data_format,
                         count_include_pad=int(include))
        self.count_include_pad = count_include_pad

    def extend_repr(self):
        return super().extend_repr() + f", count_include_pad={self.count_include_pad}"
