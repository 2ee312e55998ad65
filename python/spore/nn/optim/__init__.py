"""spore.nn optimizers: each runs Spore's fused in-place update primitives
(sgd_update, adam_update) on its Parameters."""
from spore.nn.optim.optimizer import *  # noqa: F401,F403
from spore.nn.optim.sgd import *  # noqa: F401,F403
from spore.nn.optim.momentum import *  # noqa: F401,F403
from spore.nn.optim.adam import *  # noqa: F401,F403
__all__ = []  # the names are re-exported by the parent package
