"""spore.dataset.transforms: general data transforms (MindSpore's
mindspore.dataset.transforms): TypeCast, Compose, and the base class of
every C transform.

A transform object made here (or in spore.dataset.vision) holds one C
sp_transform, built and checked in __init__ so a bad argument fails at the
line that made it.  In a pipeline (Dataset.map) the C object runs in the
pipeline's worker threads; called directly on an array (eager mode, as
MindSpore allows) it runs the same C code once and returns numpy arrays.
"""
import itertools

from spore import _C
from spore.dataset import config

__all__ = ["TypeCast", "Compose", "TensorOperation"]

_eager_rows = itertools.count()


class TensorOperation:
    """Base of the transforms implemented in C.  Subclasses set self._tf to a
    _C.Transform in __init__ (via _make)."""
    _random = False

    def _make(self, name, *args):
        self._tf = _C.data_transform(name, *args)

    def _sp_transforms(self, ncols=1):
        """The C transforms this operation stands for, in order (ncols: the
        columns the map gives it)."""
        return [self._tf]

    def __call__(self, *images):
        """Applies the transform to one row (numpy arrays or Tensors) and
        returns numpy arrays: one, or a tuple for several columns."""
        out = images
        for tf in self._sp_transforms(len(images)):
            seed = config._op_seed(7, 0)
            out = tf.apply(tuple(out), seed, next(_eager_rows))
        arrays = tuple(t.asnumpy() for t in out)
        return arrays[0] if len(arrays) == 1 else arrays


class TypeCast(TensorOperation):
    """Casts a column to data_type (a spore dtype such as spore.int32, a
    numpy dtype or its name)."""

    def __init__(self, data_type):
        self.data_type = data_type
        self._make("type_cast", data_type)


class Compose(TensorOperation):
    """Applies transforms in turn.  In Dataset.map the list is flattened
    into the map's operations; Python callables may appear in it."""

    def __init__(self, transforms):
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ValueError("Compose: transforms must be a non-empty list")
        self.transforms = list(transforms)

    def _sp_transforms(self, ncols=1):
        out = []
        for t in self.transforms:
            if isinstance(t, TensorOperation):
                out.extend(t._sp_transforms(ncols))
            elif callable(t):
                out.append(_C.data_pyfunc(t, ncols))
            else:
                raise TypeError(f"Compose: {t!r} is neither a transform nor callable")
        return out
