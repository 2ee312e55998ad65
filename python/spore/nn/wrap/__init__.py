"""spore.nn wrappers: a network with its loss, one training step."""
from spore.nn.wrap.cell_wrapper import *  # noqa: F401,F403
__all__ = []  # the names are re-exported by the parent package
