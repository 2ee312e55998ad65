"""spore.dataset.vision: MindSpore's image transforms, run in C
(src/data/transform.c).

Images are HWC (or HW) numpy-layout arrays as MindSpore takes them; every
transform here takes one column.  Rescale and Normalize give float32;
crop, flip and resize keep the dtype; HWC2CHW is where the layout changes
for the network.  Random transforms draw from Philox keyed by the
pipeline's seed (spore.dataset.config.set_seed) and the row's number, so
a pipeline gives the same crops and flips with any number of workers.

Not supported (an error says so): Normalize(is_hwc=False), Resize with
CUBIC/AREA/PILCUBIC/ANTIALIAS, RandomCrop with a per-channel fill or a
padding_mode other than Border.CONSTANT.
"""
from enum import Enum
from numbers import Number

from spore.dataset.transforms import TensorOperation

__all__ = ["Inter", "Border", "Rescale", "Normalize", "HWC2CHW", "RandomCrop", "RandomHorizontalFlip",
           "Resize"]


class Inter(Enum):
    """Interpolation modes (MindSpore's mindspore.dataset.vision.Inter)."""
    NEAREST = 0
    ANTIALIAS = 1
    LINEAR = 2
    BILINEAR = 2
    CUBIC = 3
    BICUBIC = 3
    AREA = 4
    PILCUBIC = 5


class Border(Enum):
    """Padding modes (MindSpore's mindspore.dataset.vision.Border)."""
    CONSTANT = "constant"
    EDGE = "edge"
    REFLECT = "reflect"
    SYMMETRIC = "symmetric"


def _size_hw(size, what):
    if isinstance(size, Number) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise TypeError(f"{what}: size must be an int or a sequence (height, width), not {size!r}")


class Rescale(TensorOperation):
    """output = image * rescale + shift, as float32."""

    def __init__(self, rescale, shift):
        self.rescale, self.shift = rescale, shift
        self._make("rescale", float(rescale), float(shift))


class Normalize(TensorOperation):
    """output[..., c] = (image[..., c] - mean[c]) / std[c], as float32, on HWC
    images (len(mean) == channels) or HW images (one value)."""

    def __init__(self, mean, std, is_hwc=True):
        if not is_hwc:
            raise NotImplementedError("Normalize(is_hwc=False): Spore normalizes HWC images; "
                                      "apply Normalize before HWC2CHW")
        mean = [mean] if isinstance(mean, Number) else list(mean)
        std = [std] if isinstance(std, Number) else list(std)
        self.mean, self.std, self.is_hwc = mean, std, is_hwc
        self._make("normalize", mean, std)


class HWC2CHW(TensorOperation):
    """(H, W, C) -> (C, H, W); HW images pass unchanged."""

    def __init__(self):
        self._make("hwc2chw")


class RandomCrop(TensorOperation):
    """Pads the image by `padding` (int: every side; (lr, tb); or (left, top,
    right, bottom)) with fill_value, then crops `size` at a random place.
    pad_if_needed pads a smaller image up to size first."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill_value=0,
                 padding_mode=Border.CONSTANT):
        h, w = _size_hw(size, "RandomCrop")
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, Number) and not isinstance(padding, bool):
            pad = (int(padding),) * 4
        elif isinstance(padding, (list, tuple)) and len(padding) == 2:
            pad = (int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1]))
        elif isinstance(padding, (list, tuple)) and len(padding) == 4:
            pad = tuple(int(p) for p in padding)
        else:
            raise TypeError(f"RandomCrop: padding must be an int or 2 or 4 ints, not {padding!r}")
        if isinstance(fill_value, (list, tuple)):
            if len(set(fill_value)) != 1:
                raise NotImplementedError("RandomCrop: a per-channel fill_value is not supported; "
                                          "give one number")
            fill_value = fill_value[0]
        if padding_mode != Border.CONSTANT:
            raise NotImplementedError(f"RandomCrop: padding_mode {padding_mode} is not supported "
                                      "(only Border.CONSTANT)")
        self.size, self.padding, self.pad_if_needed, self.fill_value = (h, w), pad, pad_if_needed, fill_value
        self._random = True
        self._make("random_crop", h, w, pad, bool(pad_if_needed), float(fill_value))


class RandomHorizontalFlip(TensorOperation):
    """Mirrors the image left-right with probability prob."""

    def __init__(self, prob=0.5):
        self.prob = prob
        self._random = True
        self._make("random_horizontal_flip", float(prob))


class Resize(TensorOperation):
    """Resizes to size (height, width), or (an int) the shorter side to size
    keeping the aspect ratio.  Inter.LINEAR (bilinear, half-pixel centres as
    OpenCV) or Inter.NEAREST."""

    def __init__(self, size, interpolation=Inter.LINEAR):
        if isinstance(size, Number) and not isinstance(size, bool):
            h, w = int(size), 0
        else:
            h, w = _size_hw(size, "Resize")
            if w <= 0:
                raise ValueError(f"Resize: size {size!r} must be positive")
        if interpolation not in (Inter.LINEAR, Inter.NEAREST):
            raise NotImplementedError(f"Resize: interpolation {interpolation} is not supported "
                                      "(Inter.LINEAR or Inter.NEAREST)")
        self.size, self.interpolation = size, interpolation
        self._make("resize", h, w, interpolation == Inter.NEAREST)
