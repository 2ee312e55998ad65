"""SequentialCell and CellList: Cells that hold an ordered list of Cells
(MindSpore 2.x).

SequentialCell(*args) takes Cells, a list of Cells or an OrderedDict of
name -> Cell and its construct feeds each cell's output to the next.
CellList(args) is a plain list of Cells with list methods (append, extend,
insert, indexing, slicing, len, iteration); it is not callable itself, a
parent's construct iterates over it or indexes it.

Both keep one invariant: the sub-cells are registered with the Cell under
their keys ("0", "1", ... or the OrderedDict's names) in order, so
parameters_and_names() and set_train() see them, and parameter names carry
the key as MindSpore's do ("0.weight", "seq.1.bias").  Every mutation
rebuilds the registration through _rebuild, which renames the Parameters of
cells whose key changed (insert shifts the later ones), including any
prefix a parent already gave the container, and reassigns ``cell_list``.

GRAPH_MODE.  The resolver turns a list or tuple of Cells into a tuple of
compiled functions, so SequentialCell's construct is a ``for`` over
``self.cell_list`` that the compiler unrolls.  A CellList a parent uses
(``for layer in self.layers``, ``self.layers[0](x)``) must resolve to that
tuple rather than to a compiled construct: CellList exposes it as
``_sp_value``, the hook spore._jit.to_spore asks before treating an object
as a Cell.
"""
from collections import OrderedDict

from spore.nn.cell import Cell

__all__ = ["SequentialCell", "CellList"]


def _check_cell(cls, cell):
    if not isinstance(cell, Cell):
        raise TypeError(f"{cls}: expected a Cell, got {type(cell).__name__}")
    return cell


class _CellContainer(Cell):
    _named = False  # keys are names (OrderedDict), not positions

    def _param_prefix(self):
        """The prefix a parent gave this container's parameter names ('' when
        none, or when the container holds no parameters yet)."""
        for local, p in self.parameters_and_names():
            if p.name and p.name.endswith(local):
                return p.name[:len(p.name) - len(local)]
        return ""

    def _rebuild(self, keys, cells):
        """Registers ``cells`` under ``keys`` (in order), renaming the
        Parameters of cells that were here under another key and prefixing
        those of new cells, then sets cell_list."""
        prefix = self._param_prefix()
        old = {id(c): k for k, c in self._cells.items()}
        for k in list(self._cells):
            Cell.__delattr__(self, k)
        for key, cell in zip(keys, cells):
            if cell.__dict__.get("_auto_prefix", True):
                was = old.get(id(cell))
                for local, p in cell.parameters_and_names():
                    if was is not None and p.name == f"{prefix}{was}.{local}":
                        p.name = f"{prefix}{key}.{local}"
                    elif p.name == local:
                        p.name = f"{prefix}{key}.{local}"
            Cell.__setattr__(self, key, cell)
        Cell.__setattr__(self, "cell_list", list(cells))

    def _positions(self, n):
        return [str(i) for i in range(n)]

    def __len__(self):
        return len(self._cells)

    def __iter__(self):
        return iter(list(self._cells.values()))

    def _index(self, index):
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"{type(self).__name__} indices must be int or slice, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range for length {n}")
        return index % n

    def __getitem__(self, index):
        if isinstance(index, slice):
            items = list(self._cells.items())[index]
            if self._named:
                return type(self)(OrderedDict(items))
            return type(self)([c for _, c in items])
        return list(self._cells.values())[self._index(index)]

    def __setitem__(self, index, cell):
        _check_cell(type(self).__name__, cell)
        i = self._index(index)
        keys, cells = list(self._cells), list(self._cells.values())
        cells[i] = cell
        self._rebuild(keys, cells)

    def __delitem__(self, index):
        keys, cells = list(self._cells), list(self._cells.values())
        if isinstance(index, slice):
            drop = set(range(len(cells))[index])
        else:
            drop = {self._index(index)}
        keep = [i for i in range(len(cells)) if i not in drop]
        cells = [cells[i] for i in keep]
        keys = [keys[i] for i in keep] if self._named else self._positions(len(cells))
        self._rebuild(keys, cells)

    def append(self, cell):
        """Adds ``cell`` at the end."""
        self.insert(len(self), cell)
        return self

    def extend(self, cells):
        """Adds every Cell of ``cells`` at the end."""
        if not isinstance(cells, (list, tuple, _CellContainer)):
            raise TypeError(f"{type(self).__name__}.extend takes a list or tuple of Cells, "
                            f"got {type(cells).__name__}")
        for c in cells:
            self.append(c)
        return self

    def insert(self, index, cell):
        """Inserts ``cell`` before position ``index`` (list.insert's rule)."""
        _check_cell(type(self).__name__, cell)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"{type(self).__name__}.insert: 'index' must be an int, got {type(index).__name__}")
        keys, cells = list(self._cells), list(self._cells.values())
        n = len(cells)
        i = max(0, min(n, index + n if index < 0 else index))
        cells.insert(i, cell)
        if self._named:
            key = str(n)
            while key in self._cells:
                key = "_" + key
            keys.insert(i, key)
        else:
            keys = self._positions(n + 1)
        self._rebuild(keys, cells)

    def __iadd__(self, cells):
        return self.extend(cells)

    def extend_repr(self):
        return ""


class SequentialCell(_CellContainer):
    """Runs its cells in order: SequentialCell(cell0, cell1, ...),
    SequentialCell([cell0, cell1]) or SequentialCell(OrderedDict(name=cell))."""

    def __init__(self, *args):
        super().__init__()
        cls = "SequentialCell"
        if len(args) == 1 and isinstance(args[0], dict):
            self._named = True
            items = list(args[0].items())
            for k, c in items:
                if not isinstance(k, str) or not k or "." in k:
                    raise ValueError(f"{cls}: cell names must be non-empty strings without '.', got {k!r}")
                _check_cell(cls, c)
            keys, cells = [k for k, _ in items], [c for _, c in items]
        else:
            cells = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
            for c in cells:
                _check_cell(cls, c)
            keys = self._positions(len(cells))
        self._rebuild(keys, cells)

    def construct(self, x):
        for cell in self.cell_list:
            x = cell(x)
        return x


class CellList(_CellContainer):
    """A list of Cells: CellList([cell0, cell1]).  Index it or iterate over
    it in the construct of the Cell that owns it."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        cls = "CellList"
        if len(args) > 1 or kwargs:
            raise TypeError(f"{cls} takes one list of Cells")
        cells = list(args[0]) if args else []
        for c in cells:
            _check_cell(cls, c)
        self._rebuild(self._positions(len(cells)), cells)

    @property
    def _sp_value(self):
        from spore._jit import to_spore
        return to_spore(tuple(self._cells.values()), "CellList")

    def construct(self, *inputs):
        raise NotImplementedError("CellList is not callable: iterate over it or index it in a construct")
