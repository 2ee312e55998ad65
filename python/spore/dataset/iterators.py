"""The iterators of spore.dataset: what create_tuple_iterator and
create_dict_iterator return, and what `for row in dataset` uses.

One iterator object serves num_epochs passes, as MindSpore's does: each
pass ends with StopIteration, and the next call to __next__ starts the
next pass (a new C iterator, so shuffles and random transforms draw anew
for that epoch) until num_epochs passes are done (-1: no limit).  A pass
is a C sp_data_iter whose threads run the pipeline; it is closed (threads
joined, rows freed) at the end of the pass, when the iterator is dropped
or stop() is called, and at interpreter exit for iterators still alive,
before Python stops accepting the threads' callbacks.
"""
import atexit
import weakref

__all__ = ["TupleIterator", "DictIterator"]

_live = weakref.WeakSet()


@atexit.register
def _close_all():
    for it in list(_live):
        it.stop()


class _Iterator:
    def __init__(self, dataset, num_epochs, output_numpy, columns):
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or (num_epochs < 1 and num_epochs != -1):
            raise ValueError(f"num_epochs must be a positive int or -1, not {num_epochs!r}")
        self._ds = dataset
        self._left = num_epochs
        self._numpy = bool(output_numpy)
        names = dataset.get_col_names()
        if columns is None:
            self._pick = None
            self._names = names
        else:
            columns = [columns] if isinstance(columns, str) else list(columns)
            for c in columns:
                if c not in names:
                    raise ValueError(f"column '{c}' is not in the dataset (its columns: {names})")
            self._pick = [names.index(c) for c in columns]
            self._names = columns
        self._cur = None
        _live.add(self)

    def __iter__(self):
        return self

    def _next_row(self):
        if self._cur is None:
            if self._left == 0:
                raise StopIteration
            self._cur = self._ds._start_pass(self._numpy)
        try:
            row = next(self._cur)
        except StopIteration:
            self._end_pass()
            raise
        except BaseException:
            self._end_pass()
            raise
        if self._pick is not None:
            row = tuple(row[i] for i in self._pick)
        return row

    def _end_pass(self):
        cur, self._cur = self._cur, None
        if cur is not None:
            cur.close()
        if self._left > 0:
            self._left -= 1

    def stop(self):
        """Stops the pipeline's threads; the iterator yields nothing more."""
        cur, self._cur = self._cur, None
        if cur is not None:
            cur.close()
        self._left = 0

    def get_col_names(self):
        return list(self._names)

    def __del__(self):
        cur = getattr(self, "_cur", None)
        if cur is not None:
            cur.close()


class TupleIterator(_Iterator):
    """Yields a list of the row's columns (Tensors, or numpy arrays with
    output_numpy=True)."""

    def __next__(self):
        return list(self._next_row())


class DictIterator(_Iterator):
    """Yields {column name: value} for each row."""

    def __next__(self):
        return dict(zip(self._names, self._next_row()))
