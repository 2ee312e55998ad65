"""spore.nn.Cell: MindSpore's module class.

A Cell registers its Parameters and sub-cells as they are assigned
(``__setattr__``), names parameters by their attribute path as MindSpore's
auto_prefix does ("fc1.weight"), and runs ``construct`` when called:
eagerly in PYNATIVE_MODE, compiled from its source by Spore's C compiler
in GRAPH_MODE (spore._jit: sub-cells compile into the graph through the
resolver, Parameters become the tensors they hold).  Assigning an attribute
drops the compiled graphs, since they embed the attributes' values.
"""
from collections import OrderedDict

from spore import context
from spore.common.tensor import Parameter, ParameterTuple

_generation = [0]


class Cell:
    """The base class of networks: define ``__init__`` and ``construct``."""

    def __init__(self, auto_prefix=True, flags=None):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_cells", OrderedDict())
        object.__setattr__(self, "_spore_graphs", {})
        object.__setattr__(self, "training", False)
        object.__setattr__(self, "_auto_prefix", auto_prefix)
        object.__setattr__(self, "requires_grad", False)

    def _check_init(self):
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init()
            if value.name is None or value.name == "Parameter":
                value.name = name
            d["_cells"].pop(name, None)
            d["_params"][name] = value
        elif isinstance(value, Cell):
            self._check_init()
            if d.get("_auto_prefix", True):  # the parent's flag decides, as in MindSpore
                for pname, p in value.parameters_and_names():
                    if p.name == pname:
                        p.name = f"{name}.{pname}"
            d["_params"].pop(name, None)
            d["_cells"][name] = value
        elif "_params" in d:
            d["_params"].pop(name, None)
            d["_cells"].pop(name, None)
        object.__setattr__(self, name, value)
        _generation[0] += 1
        if "_spore_graphs" in d:
            d["_spore_graphs"].clear()
            d.get("_spore_lifted", {}).clear()
            d.pop("_spore_modes", None)

    def __delattr__(self, name):
        self._params.pop(name, None)
        self._cells.pop(name, None)
        object.__delattr__(self, name)
        _generation[0] += 1
        self._spore_graphs.clear()

    def __deepcopy__(self, memo):
        import copy
        new = object.__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k in ("_spore_graphs", "_spore_lifted", "_spore_modes"):
                v = {}
            else:
                v = copy.deepcopy(v, memo)
            object.__setattr__(new, k, v)
        return new

    def construct(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define construct()")

    def __call__(self, *args, **kwargs):
        if context.get_context("mode") == context.GRAPH_MODE:
            from spore import _jit
            return _jit.call(lambda: _jit.compile_function(self.construct, self),
                             self.__dict__.setdefault("_spore_lifted", {}), args, kwargs)
        return self.construct(*args, **kwargs)

    # ---- parameters and sub-cells ----
    def parameters_and_names(self, name_prefix="", expand=True):
        """(name, Parameter) for this cell's parameters and, with expand, its
        sub-cells', each once, names as attribute paths."""
        seen = set()
        for cname, cell in self.cells_and_names(name_prefix) if expand else [(name_prefix, self)]:
            for pname, p in cell._params.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{cname}.{pname}" if cname else pname), p

    def get_parameters(self, expand=True):
        for _, p in self.parameters_and_names(expand=expand):
            yield p

    def trainable_params(self, recurse=True):
        return ParameterTuple(p for p in self.get_parameters(recurse) if p.requires_grad)

    def untrainable_params(self, recurse=True):
        return ParameterTuple(p for p in self.get_parameters(recurse) if not p.requires_grad)

    def cells_and_names(self, cell_name=""):
        """(name, cell) for this cell and every sub-cell, depth first, each once."""
        seen = set()

        def walk(prefix, cell):
            if id(cell) in seen:
                return
            seen.add(id(cell))
            yield prefix, cell
            for n, c in cell._cells.items():
                yield from walk(f"{prefix}.{n}" if prefix else n, c)
        yield from walk(cell_name, self)

    def cells(self):
        return list(self._cells.values())

    def name_cells(self):
        return OrderedDict(self._cells)

    def insert_param_to_cell(self, param_name, param, check_name_contain_dot=True):
        setattr(self, param_name, param)

    def insert_child_to_cell(self, child_name, child_cell):
        setattr(self, child_name, child_cell)

    def set_train(self, mode=True):
        """Training mode for this cell and every sub-cell (Dropout, BatchNorm).

        Compiled graphs embed the flag, so each cell keeps one cache of
        compiled graphs per mode and switches between them: alternating
        training and evaluation (Model.fit) compiles each graph once."""
        mode = bool(mode)
        for _, c in self.cells_and_names():
            d = c.__dict__
            if d.get("training") == mode and "_spore_modes" in d:
                continue
            modes = d.setdefault("_spore_modes", {})
            modes[d.get("training", False)] = (d.get("_spore_graphs", {}), d.get("_spore_lifted", {}))
            graphs, lifted = modes.get(mode, ({}, {}))
            object.__setattr__(c, "_spore_graphs", graphs)
            object.__setattr__(c, "_spore_lifted", lifted)
            object.__setattr__(c, "training", mode)
        return self

    def set_grad(self, requires_grad=True):
        object.__setattr__(self, "requires_grad", requires_grad)
        return self

    def to_float(self, dst_type):
        return self

    def extend_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}<{self.extend_repr()}>"]
        for n, c in self._cells.items():
            lines.append(f"  ({n}): " + repr(c).replace("\n", "\n  "))
        return "\n".join(lines)
