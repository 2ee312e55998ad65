"""spore.nn: Cell (layers, losses and optimizers follow with the training
stack)."""
from spore.nn.cell import Cell

__all__ = ["Cell"]
