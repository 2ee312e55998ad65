"""spore.nn losses (MindSpore 2.x names and reductions)."""
from spore.nn.loss.loss import *  # noqa: F401,F403
__all__ = []  # the names are re-exported by the parent package
