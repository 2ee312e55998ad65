"""The Dataset classes of spore.dataset: MindSpore's pipeline API over
Spore's C data pipeline (include/spore/data.h).

A Dataset object is a description, like MindSpore's: a source
(MnistDataset, Cifar10Dataset, NumpySlicesDataset, GeneratorDataset) and
the operations chained on it (map, shuffle, batch, repeat).  It holds no
iteration state except how many passes have been started over it.  Each
pass builds a fresh C pipeline (_C.DataPipe) from the description and
runs it in C threads: sources read files or tensors in C, maps run the C
transforms in worker threads (a Python callable takes the GIL only for
its own call), batches are stacked in C.  Nothing numeric happens here;
numpy only converts what users hand in.

Why fresh per pass: a C pipeline's sources carry a read position (the
sampler of a shuffled source, a Python generator), so two iterators over
one Dataset must not share them.  Files are read once, when the source
dataset is made, so a missing or damaged file fails at that line.

Epochs: the n-th pass over a Dataset object (counting every iterator
made from it) runs with epoch n, which keys the order of shuffled sources
and shuffle() and the draws of random transforms; with set_seed the
sequence of passes is reproducible.

Column names live here, not in C (map(output_columns=...) and rename()
change them without touching the pipeline).  Differences from MindSpore
are listed in spore/dataset/__init__.py.
"""
import numbers

import numpy as np

from spore import _C
from spore.dataset import config
from spore.dataset.iterators import TupleIterator, DictIterator
from spore.dataset.transforms import TensorOperation

__all__ = ["Dataset", "MnistDataset", "Cifar10Dataset", "NumpySlicesDataset", "GeneratorDataset"]

# salts of config._op_seed: which kind of operation a seed belongs to
_SEED_SAMPLER, _SEED_SHUFFLE, _SEED_MAP = 1, 2, 3


def _check_int(v, name, lo, hi=None, none_ok=True):
    if v is None and none_ok:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an int {rng}, not {v!r}")


class Dataset:
    """Base of every dataset: the operations and the iterators."""

    def __init__(self, parent=None):
        self._parent = parent
        self._depth = 0 if parent is None else parent._depth + 1
        self._epochs_started = 0
        self._size_cache = None

    # ---- what subclasses provide ----
    def _make_pipe(self):
        """A fresh _C.DataPipe for this node (new C sources each call)."""
        raise NotImplementedError

    def get_col_names(self):
        """The names of the columns of a row."""
        return self._parent.get_col_names()

    def _workers(self):
        """Worker threads the maps of this pipeline ask for (0: no map)."""
        return self._parent._workers() if self._parent is not None else 0

    # ---- iteration ----
    def _start_pass(self, numpy):
        epoch = self._epochs_started
        self._epochs_started += 1
        return self._make_pipe().iterate(self._workers(), config.get_prefetch_size(), epoch, numpy)

    def create_tuple_iterator(self, columns=None, num_epochs=-1, output_numpy=False, do_copy=True):
        """An iterator over num_epochs passes (-1: any number) yielding a list
        of the row's columns: Tensors sharing the pipeline's memory, or numpy
        arrays with output_numpy=True.  columns picks and orders columns."""
        return TupleIterator(self, num_epochs, output_numpy, columns)

    def create_dict_iterator(self, num_epochs=-1, output_numpy=False, do_copy=True):
        """Like create_tuple_iterator, yielding {column name: value}."""
        return DictIterator(self, num_epochs, output_numpy, None)

    def __iter__(self):
        return self.create_tuple_iterator(num_epochs=1)

    # ---- operations ----
    def map(self, operations, input_columns=None, output_columns=None, column_order=None,
            num_parallel_workers=None, python_multiprocessing=False, cache=None, callbacks=None,
            max_rowsize=16, offload=None):
        """Applies operations (a transform, a Python callable, or a list of
        them) in turn to input_columns (default: the first column), in
        num_parallel_workers C threads.  output_columns renames the columns
        (the operations must give as many columns as they take)."""
        return MapDataset(self, operations, input_columns, output_columns, column_order,
                          num_parallel_workers)

    def shuffle(self, buffer_size):
        """MindSpore's buffer shuffle: each row is drawn at random from a
        buffer of buffer_size rows (>= 2), refilled from upstream."""
        return ShuffleDataset(self, buffer_size)

    def batch(self, batch_size, drop_remainder=False, num_parallel_workers=None, per_batch_map=None,
              input_columns=None, output_columns=None, **kwargs):
        """Stacks batch_size consecutive rows per column; the last short batch
        is dropped when drop_remainder."""
        if per_batch_map is not None:
            raise NotImplementedError("batch: per_batch_map is not supported; map before batching")
        return BatchDataset(self, batch_size, drop_remainder)

    def repeat(self, count=None):
        """Runs the dataset count times (None or -1: forever); each pass
        reshuffles."""
        return RepeatDataset(self, count)

    def rename(self, input_columns, output_columns):
        """Renames columns."""
        return RenameDataset(self, input_columns, output_columns)

    # ---- information ----
    def get_dataset_size(self):
        """Rows (batches after batch()) in one pass; -1 for an endless repeat."""
        if self._size_cache is None:
            self._size_cache = self._size()
        return self._size_cache

    def _size(self):
        return self._parent.get_dataset_size()

    def _first_row(self):
        it = self._make_pipe().iterate(0, 0, 0, True)
        try:
            return next(it)
        except StopIteration:
            raise RuntimeError("the dataset is empty") from None
        finally:
            it.close()

    def output_shapes(self):
        """Shapes of the columns of the first row (runs the pipeline once)."""
        return [list(a.shape) for a in self._first_row()]

    def output_types(self):
        """numpy dtypes of the columns of the first row."""
        return [a.dtype for a in self._first_row()]

    def get_batch_size(self):
        return self._parent.get_batch_size() if self._parent is not None else 1

    def get_repeat_count(self):
        return self._parent.get_repeat_count() if self._parent is not None else 1


# ---- sources ---------------------------------------------------------------------


def _sampling(shuffle, num_samples, num_shards, shard_id, sampler, default_shuffle=True):
    """MindSpore's sampler arguments -> (shuffle, num_samples (-1: all),
    num_shards, shard_id)."""
    if sampler is not None:
        raise NotImplementedError("sampler objects are not supported; use shuffle, num_samples, "
                                  "num_shards and shard_id")
    _check_int(num_samples, "num_samples", 0)
    if (num_shards is None) != (shard_id is None):
        raise ValueError("num_shards and shard_id must be given together")
    _check_int(num_shards, "num_shards", 1)
    if num_shards is not None:
        _check_int(shard_id, "shard_id", 0, num_shards - 1)
    if shuffle is not None and not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, not {shuffle!r}")
    return (default_shuffle if shuffle is None else shuffle,
            -1 if num_samples in (None, 0) else int(num_samples),
            1 if num_shards is None else int(num_shards), 0 if shard_id is None else int(shard_id))


def _sampled_size(n, num_samples, shards):
    count = -(-n // shards) if n else 0
    return count if num_samples < 0 else min(count, num_samples)


class _TensorSource(Dataset):
    """Rows are slices along axis 0 of Tensors held in C memory."""

    def __init__(self, columns, names, shuffle, num_samples, num_shards, shard_id, sampler,
                 default_shuffle=True):
        super().__init__()
        self._cols = list(columns)
        self._names = list(names)
        self._shuffle, self._num_samples, self._shards, self._shard_id = _sampling(
            shuffle, num_samples, num_shards, shard_id, sampler, default_shuffle)
        self._seed = config._op_seed(_SEED_SAMPLER, 0)
        self._make_pipe()  # checks the columns now

    def get_col_names(self):
        return list(self._names)

    def _make_pipe(self):
        return _C.data_tensors(self._cols, self._names, self._shuffle, self._num_samples, self._shards,
                               self._shard_id, self._seed)

    def _size(self):
        return _sampled_size(self._cols[0].shape[0], self._num_samples, self._shards)


def _check_dir(dataset_dir, who):
    import os
    if not isinstance(dataset_dir, (str, os.PathLike)):
        raise TypeError(f"{who}: dataset_dir must be a path, not {dataset_dir!r}")
    dataset_dir = os.fspath(dataset_dir)
    if not os.path.isdir(dataset_dir):
        raise ValueError(f"{who}: dataset_dir '{dataset_dir}' is not a directory")
    return dataset_dir


def _check_usage(usage, who):
    usage = "all" if usage is None else usage
    if usage not in ("train", "test", "all"):
        raise ValueError(f"{who}: usage must be 'train', 'test' or 'all', not {usage!r}")
    return usage


class MnistDataset(_TensorSource):
    """MNIST-format data (MNIST, Fashion-MNIST) from dataset_dir: the IDX
    files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-* (raw or
    .gz).  usage 'train' (60,000 rows), 'test' (10,000) or 'all' (None:
    both, train first).  Columns "image" uint8 (28, 28, 1) and "label"
    uint8 (MindSpore gives uint32 labels; Spore has no uint32, cast with
    transforms.TypeCast).  shuffle defaults to True (a new order every
    epoch)."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None):
        d = _check_dir(dataset_dir, "MnistDataset")
        images, labels = _C.data_mnist(d, _check_usage(usage, "MnistDataset"))
        super().__init__((images, labels), ("image", "label"), shuffle, num_samples, num_shards, shard_id,
                         sampler)


class Cifar10Dataset(_TensorSource):
    """CIFAR-10 binary batches from dataset_dir (or its cifar-10-batches-bin):
    usage 'train' (data_batch_1..5.bin), 'test' (test_batch.bin) or 'all'
    (None).  Columns "image" uint8 (32, 32, 3) HWC and "label" uint8
    (MindSpore: uint32)."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None):
        d = _check_dir(dataset_dir, "Cifar10Dataset")
        images, labels = _C.data_cifar10(d, _check_usage(usage, "Cifar10Dataset"))
        super().__init__((images, labels), ("image", "label"), shuffle, num_samples, num_shards, shard_id,
                         sampler)


def _as_column(x, who):
    """A user column as an array Spore can hold (wider ints where Spore lacks
    the unsigned type)."""
    from spore.common.tensor import Tensor
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype.kind == "u" and a.dtype.itemsize > 1:
        a = a.astype(np.int64 if a.dtype.itemsize >= 4 else np.int32)
    elif a.dtype == np.int16:
        a = a.astype(np.int32)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{who}: a column of dtype {a.dtype} is not supported (numbers and bools only)")
    if a.ndim == 0:
        raise ValueError(f"{who}: a column must have at least one dimension (rows are its slices)")
    return np.ascontiguousarray(a)


class NumpySlicesDataset(_TensorSource):
    """Rows are slices along the first axis of data: a list or an array (one
    column), a tuple (one column per item) or a dict (columns named by the
    keys).  shuffle defaults to True."""

    def __init__(self, data, column_names=None, num_samples=None, num_parallel_workers=1, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None):
        if isinstance(data, dict):
            names = list(data.keys()) if column_names is None else column_names
            cols = list(data.values())
        elif isinstance(data, tuple):
            cols = list(data)
            names = column_names
        else:
            cols = [data]
            names = column_names
        if names is None:
            names = [f"column_{i}" for i in range(len(cols))]
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != len(cols):
            raise ValueError(f"NumpySlicesDataset: {len(names)} column names for {len(cols)} columns")
        cols = [_as_column(c, "NumpySlicesDataset") for c in cols]
        super().__init__(cols, names, shuffle, num_samples, num_shards, shard_id, sampler)


_RANDOM, _CALLABLE, _ITERABLE = 0, 1, 2


class GeneratorDataset(Dataset):
    """Rows from Python: source is a random-access object (__getitem__ and
    __len__; rows source[i]), a callable returning an iterator (a generator
    function; called anew each pass), or an iterable (iter(source) each
    pass).  Each row is a tuple of column_names' length (numpy arrays,
    numbers, Tensors).  shuffle (random-access sources only) defaults to
    True.  The source is called from the pipeline's C thread with the GIL
    taken, one call at a time."""

    def __init__(self, source, column_names=None, column_types=None, schema=None, num_samples=None,
                 num_parallel_workers=1, shuffle=None, sampler=None, num_shards=None, shard_id=None,
                 python_multiprocessing=True, max_rowsize=6):
        super().__init__()
        if column_names is None:
            raise ValueError("GeneratorDataset: column_names is required")
        self._names = [column_names] if isinstance(column_names, str) else list(column_names)
        if not self._names or not all(isinstance(n, str) for n in self._names):
            raise ValueError(f"GeneratorDataset: column_names must be a non-empty list of str, "
                             f"not {column_names!r}")
        if len(set(self._names)) != len(self._names):
            raise ValueError(f"GeneratorDataset: duplicate column names {self._names}")
        if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
            self._kind = _RANDOM
        elif callable(source):
            self._kind = _CALLABLE
        elif hasattr(source, "__iter__"):
            self._kind = _ITERABLE
        else:
            raise TypeError(f"GeneratorDataset: source must be random-accessible, callable or "
                            f"iterable, not {type(source).__name__}")
        if self._kind != _RANDOM and (shuffle or num_shards is not None or sampler is not None):
            raise ValueError("GeneratorDataset: shuffle, sampler and num_shards need a random-access "
                             "source (with __getitem__ and __len__)")
        self._source = source
        self._shuffle, self._num_samples, self._shards, self._shard_id = _sampling(
            shuffle, num_samples, num_shards, shard_id, sampler, self._kind == _RANDOM)
        self._seed = config._op_seed(_SEED_SAMPLER, 0)
        self._casts = None
        if column_types is not None:
            if len(column_types) != len(self._names):
                raise ValueError("GeneratorDataset: column_types must have one type per column")
            self._casts = [_C.data_transform("type_cast", t) for t in column_types]

    def get_col_names(self):
        return list(self._names)

    def _make_pipe(self):
        p = _C.data_generator(self._kind, self._source, self._names, self._shuffle, self._num_samples,
                              self._shards, self._shard_id, self._seed)
        if self._casts:
            for i, tf in enumerate(self._casts):
                p = p.map([tf], [i], 0)
        return p

    def _size(self):
        if self._kind == _RANDOM:
            return _sampled_size(len(self._source), self._num_samples, self._shards)
        # MindSpore counts the rows of a generator by running it
        it = self._make_pipe().iterate(0, 0, 0, True)
        n = 0
        for _ in it:
            n += 1
        return n


# ---- operations ------------------------------------------------------------------


class MapDataset(Dataset):
    def __init__(self, parent, operations, input_columns, output_columns, column_order, num_parallel_workers):
        super().__init__(parent)
        names = parent.get_col_names()
        if input_columns is None:
            input_columns = [names[0]]
        input_columns = [input_columns] if isinstance(input_columns, str) else list(input_columns)
        for c in input_columns:
            if c not in names:
                raise ValueError(f"map: input column '{c}' is not in the dataset (its columns: {names})")
        self._cols = [names.index(c) for c in input_columns]
        if output_columns is None:
            output_columns = input_columns
        output_columns = [output_columns] if isinstance(output_columns, str) else list(output_columns)
        if len(output_columns) != len(input_columns):
            raise NotImplementedError("map: the operations must give as many columns as they take "
                                      f"({len(input_columns)} in, {len(output_columns)} out)")
        self._names = list(names)
        for i, c in zip(self._cols, output_columns):
            self._names[i] = c
        if len(set(self._names)) != len(self._names):
            raise ValueError(f"map: duplicate column names {self._names}")
        if column_order is not None and list(column_order) != self._names:
            raise NotImplementedError("map: column_order (reordering or dropping columns) is not supported")
        _check_int(num_parallel_workers, "num_parallel_workers", 1, 256)
        self._nw = num_parallel_workers or config.get_num_parallel_workers()
        ops = operations if isinstance(operations, (list, tuple)) else [operations]
        if not ops:
            raise ValueError("map: operations is empty")
        self._ops = []
        for op in ops:
            if isinstance(op, TensorOperation):
                self._ops.extend(op._sp_transforms(len(self._cols)))
            elif callable(op):
                self._ops.append(_C.data_pyfunc(op, len(self._cols)))
            else:
                raise TypeError(f"map: {op!r} is neither a transform nor callable")
        for k, tf in enumerate(self._ops):
            if tf.num_columns != len(self._cols):
                raise ValueError(f"map: operation {k} takes {tf.num_columns} column(s) but input_columns "
                                 f"names {len(self._cols)}")
        self._seed = config._op_seed(_SEED_MAP, self._depth)

    def get_col_names(self):
        return list(self._names)

    def _workers(self):
        return max(self._nw, self._parent._workers())

    def _make_pipe(self):
        return self._parent._make_pipe().map(self._ops, self._cols, self._seed)


class ShuffleDataset(Dataset):
    def __init__(self, parent, buffer_size):
        super().__init__(parent)
        _check_int(buffer_size, "shuffle: buffer_size", 2, 1 << 32, none_ok=False)
        self._n = int(buffer_size)
        self._seed = config._op_seed(_SEED_SHUFFLE, self._depth)

    def _make_pipe(self):
        return self._parent._make_pipe().shuffle(self._n, self._seed)


class BatchDataset(Dataset):
    def __init__(self, parent, batch_size, drop_remainder):
        super().__init__(parent)
        _check_int(batch_size, "batch: batch_size", 1, 1 << 31, none_ok=False)
        self._n = int(batch_size)
        self._drop = bool(drop_remainder)

    def _make_pipe(self):
        return self._parent._make_pipe().batch(self._n, self._drop)

    def _size(self):
        n = self._parent.get_dataset_size()
        if n < 0:
            return n
        return n // self._n if self._drop else -(-n // self._n)

    def get_batch_size(self):
        return self._n


class RepeatDataset(Dataset):
    def __init__(self, parent, count):
        super().__init__(parent)
        if count is None or count == -1:
            count = -1
        else:
            _check_int(count, "repeat: count", 1, none_ok=False)
        self._count = int(count)

    def _make_pipe(self):
        return self._parent._make_pipe().repeat(self._count)

    def _size(self):
        n = self._parent.get_dataset_size()
        return -1 if self._count < 0 or n < 0 else n * self._count

    def get_repeat_count(self):
        return self._count


class RenameDataset(Dataset):
    def __init__(self, parent, input_columns, output_columns):
        super().__init__(parent)
        ins = [input_columns] if isinstance(input_columns, str) else list(input_columns)
        outs = [output_columns] if isinstance(output_columns, str) else list(output_columns)
        if len(ins) != len(outs):
            raise ValueError("rename: input_columns and output_columns differ in length")
        names = parent.get_col_names()
        for c in ins:
            if c not in names:
                raise ValueError(f"rename: column '{c}' is not in the dataset (its columns: {names})")
        self._names = [outs[ins.index(n)] if n in ins else n for n in names]
        if len(set(self._names)) != len(self._names):
            raise ValueError(f"rename: duplicate column names {self._names}")

    def get_col_names(self):
        return list(self._names)

    def _make_pipe(self):
        return self._parent._make_pipe()
