"""spore.nn layers (MindSpore 2.x names): each layer is a Cell whose
construct composes spore.ops, so it runs eagerly in PYNATIVE_MODE and
compiles into the caller's graph in GRAPH_MODE."""
from spore.nn.layer.basic import *  # noqa: F401,F403
from spore.nn.layer.conv import *  # noqa: F401,F403
from spore.nn.layer.pooling import *  # noqa: F401,F403
from spore.nn.layer.activation import *  # noqa: F401,F403
from spore.nn.layer.normalization import *  # noqa: F401,F403
from spore.nn.layer.embedding import *  # noqa: F401,F403
from spore.nn.layer.container import *  # noqa: F401,F403
__all__ = []  # the names are re-exported by the parent package
