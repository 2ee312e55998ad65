"""GRAPH_MODE: Python functions and Cells handed to Spore's C compiler.

``compile_function(fn, owner)`` cuts the source of ``fn`` out of the user's
file (inspect), blanks its decorator lines, dedents it and gives it to the
C front end with the file's name and the line offset, so every error names
the user's own file and line with the caret line.  The names the snippet
does not define are answered by two resolver callbacks (the C side asks
them while it builds the IR):

* ``self.<attr>`` (``self`` is the first parameter of a method of a Cell):
  sub-cells (compiled the same way, bound to their own self), Parameters
  and Tensors, primitive instances (``P.Mul()``), methods of the Cell, and
  constants;
* other names: the function's closure cells and module globals (Spore's
  modules ``spore``, ``spore.ops``, ``math``; other Python functions,
  compiled in turn; constants), and ``G.attr`` for a global Python module
  such as ``F`` (``spore.ops.functional``).

Every answer is a Python object that _C turns into a Spore value: a
constant of the IR.  Nothing here computes: it only finds source text and
names.  Compiled functions are cached per (code object, Cell), and a Cell
drops its cache when one of its attributes changes.
"""
import inspect
import textwrap
import types

from spore import _C

_SPORE_MODULES = {"spore": "spore", "spore.ops": "ops", "spore.nn": "nn", "math": "math"}


class GraphModeError(TypeError):
    pass


def _local_names(code):
    names = set(code.co_varnames) | set(code.co_cellvars)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _local_names(c)
    return names


def _source(fn):
    try:
        lines, first = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or inspect.getfile(fn)
    except (OSError, TypeError) as e:
        raise GraphModeError(f"GRAPH_MODE needs the source of {fn.__qualname__}: {e}") from None
    # decorators stay as blank lines so line numbers keep their place
    out, in_def = [], False
    for ln in lines:
        s = ln.lstrip()
        if not in_def and s.startswith("@"):
            out.append("\n")
            continue
        if s.startswith("def ") or s.startswith("async def "):
            in_def = True
        out.append(ln)
    return file, textwrap.dedent("".join(out)), first - 1


class _Resolver:
    def __init__(self, fn, owner):
        self.fn = fn
        self.owner = owner
        code = fn.__code__
        self.self_name = code.co_varnames[0] if owner is not None and code.co_argcount else None
        self.locals = _local_names(code)
        self.globals = fn.__globals__
        self.closure = {}
        if fn.__closure__:
            for name, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    self.closure[name] = cell.cell_contents
                except ValueError:
                    pass

    def resolve(self, name):
        if name in self.closure:
            return to_spore(self.closure[name], name)
        if name in self.globals:
            return to_spore(self.globals[name], name)
        return None

    def resolve_attr(self, path, attr):
        names = path.split(".")
        if names[0] == self.self_name:
            obj = self.owner
            for n in names[1:] + [attr]:
                try:
                    obj = getattr(obj, n)
                except AttributeError:
                    raise GraphModeError(f"{path}.{attr}: {type(obj).__name__} has no attribute '{n}' "
                                         f"(in {self.fn.__qualname__})") from None
            v = to_spore(obj, f"{path}.{attr}")
            if v is None:
                raise GraphModeError(f"{path}.{attr} is a {type(obj).__name__}, which GRAPH_MODE "
                                     f"cannot use (in {self.fn.__qualname__})")
            return v
        if names[0] in self.locals:
            return None
        base = self.closure.get(names[0], self.globals.get(names[0]))
        if not isinstance(base, types.ModuleType) or base.__name__ in _SPORE_MODULES:
            return None
        for n in names[1:] + [attr]:
            base = getattr(base, n, None)
            if base is None:
                return None
        return to_spore(base, f"{path}.{attr}")


_fn_cache = {}


def compile_function(fn, owner=None):
    """The Spore value (a _C.Value) of Python function ``fn``; a method of a
    Cell is compiled against that Cell (``owner``) and bound to it."""
    if isinstance(fn, types.MethodType):
        owner, fn = fn.__self__, fn.__func__
    from spore.nn.cell import _generation
    cache = owner.__dict__.setdefault("_spore_graphs", {}) if owner is not None else _fn_cache
    key = fn.__code__
    hit = cache.get(key)
    if hit is not None and hit[0] == _generation[0]:
        return hit[1]
    file, src, offset = _source(fn)
    r = _Resolver(fn, owner)
    module = _C.compile(file, src, offset, r.resolve, r.resolve_attr)
    v = module.get(fn.__name__)
    if owner is not None:
        v = _C.partial(v, None)  # `self`: every self.<attr> is already a constant
    cache[key] = (_generation[0], v)
    return v


def to_spore(obj, what=""):
    """The object a resolver answers for a Python value, or None when GRAPH_MODE
    has no meaning for it."""
    from spore.common.tensor import Tensor
    from spore.nn.cell import Cell
    if isinstance(obj, (_C.TensorBase, _C.Value, bool, int, float, str, type(None))):
        return obj
    if hasattr(obj, "_sp_value"):
        return obj._sp_value
    if isinstance(obj, Cell):
        return compile_function(obj.construct, obj)
    if isinstance(obj, (tuple, list)):
        items = [to_spore(x, what) for x in obj]
        if any(x is None and y is not None for x, y in zip(items, obj)):
            return None
        return type(obj)(items) if isinstance(obj, tuple) else items
    if isinstance(obj, types.ModuleType):
        name = _SPORE_MODULES.get(obj.__name__)
        return _C.value("module", name) if name else None
    if obj is Tensor:
        return _C.value("api", "spore.Tensor")
    if isinstance(obj, types.MethodType) and isinstance(obj.__self__, Cell):
        return compile_function(obj)
    if isinstance(obj, types.FunctionType):
        return compile_function(obj)
    if hasattr(obj, "_sp_dtype"):
        return obj
    return None


