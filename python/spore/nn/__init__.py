"""spore.nn: Cell, layers, losses, optimizers, learning-rate schedules and
the training wrappers, with MindSpore 2.x's names.  Each file below lists
its public names in __all__; this package re-exports them all."""
import importlib as _importlib

from spore.nn.cell import Cell

__all__ = ["Cell"]
for _name in ("layer.basic", "layer.conv", "layer.pooling", "layer.activation", "layer.normalization",
              "layer.embedding", "layer.container", "loss.loss", "optim.optimizer", "optim.sgd",
              "optim.momentum", "optim.adam", "learning_rate_schedule", "dynamic_lr", "wrap.cell_wrapper"):
    _m = _importlib.import_module("spore.nn." + _name)
    _k = None
    for _k in _m.__all__:
        globals()[_k] = getattr(_m, _k)
    __all__ += list(_m.__all__)
del _name, _m, _k, _importlib
