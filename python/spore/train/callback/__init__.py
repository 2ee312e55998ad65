"""spore.train.callback: LossMonitor, TimeMonitor, ModelCheckpoint, ..."""
from spore.train.callback.callbacks import *  # noqa: F401,F403
__all__ = []  # the names are re-exported by the parent package
