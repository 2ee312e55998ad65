"""spore.train: Model, metrics, callbacks and checkpoints (MindSpore 2.x
names).  Each file lists its public names in __all__; this package
re-exports them all."""
import importlib as _importlib

__all__ = []
for _name in ("model", "metrics", "callback.callbacks", "serialization"):
    _m = _importlib.import_module("spore.train." + _name)
    _k = None
    for _k in _m.__all__:
        globals()[_k] = getattr(_m, _k)
    __all__ += list(_m.__all__)
del _name, _m, _k, _importlib
