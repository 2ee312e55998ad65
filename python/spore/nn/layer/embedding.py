"""Embedding: a lookup table of vocab_size rows of embedding_size values
(MindSpore 2.x).

Embedding(vocab_size, embedding_size, use_one_hot=False,
embedding_table='normal', dtype=int32, padding_idx=None) holds the table as
the Parameter ``embedding_table`` (default Normal(0.01), MindSpore's
'normal') and maps integer ids of any shape S to S + (embedding_size,).

The lookup is Spore's embedding primitive (a row gather whose gradient is a
scatter-add into the table; an id outside [0, vocab_size) is an error, not
a read out of bounds).  use_one_hot=True computes the same values as
one_hot(ids) @ table, MindSpore's formulation for hardware where a matmul
beats a gather.

padding_idx, as in MindSpore, only zeroes that row at initialization; the
row still receives gradients (PyTorch masks them, MindSpore does not).
``dtype`` names the dtype of the ids (int32 or int64), not of the table.
"""
from spore import ops
from spore.common import dtype as mstype
from spore.nn.cell import Cell
from spore.nn.layer.basic import _check_int, _check_bool, _make_param

__all__ = ["Embedding"]


class Embedding(Cell):
    """ids (int, any shape S) -> their rows of embedding_table, S + (embedding_size,)."""

    def __init__(self, vocab_size, embedding_size, use_one_hot=False, embedding_table="normal",
                 dtype=mstype.int32, padding_idx=None):
        super().__init__()
        cls = "Embedding"
        self.vocab_size = _check_int(cls, "vocab_size", vocab_size, 1)
        self.embedding_size = _check_int(cls, "embedding_size", embedding_size, 1)
        self.use_one_hot = _check_bool(cls, "use_one_hot", use_one_hot)
        if dtype not in (mstype.int32, mstype.int64):
            raise TypeError(f"{cls}: 'dtype' (of the ids) must be spore.int32 or spore.int64, got {dtype!r}")
        self.dtype = dtype
        if padding_idx is not None:
            padding_idx = _check_int(cls, "padding_idx", padding_idx)
            if not 0 <= padding_idx < self.vocab_size:
                raise ValueError(f"{cls}: 'padding_idx' must be in [0, {self.vocab_size}), got {padding_idx}")
        self.padding_idx = padding_idx
        table = _make_param(cls, "embedding_table", embedding_table, (self.vocab_size, self.embedding_size),
                            mstype.float32, "embedding_table")
        if padding_idx is not None:
            row = ops.reshape(ops.arange(self.vocab_size) == padding_idx, (self.vocab_size, 1))
            table.set_data(ops.where(row, ops.zeros_like(table), table))
        self.embedding_table = table

    def construct(self, ids):
        if self.use_one_hot:
            return ops.matmul(ops.one_hot(ids, self.vocab_size, 1.0, 0.0), self.embedding_table)
        return ops.embedding(ids, self.embedding_table)

    def extend_repr(self):
        return (f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}, "
                f"use_one_hot={self.use_one_hot}, embedding_table={self.embedding_table!r}, "
                f"dtype={self.dtype}, padding_idx={self.padding_idx}")
