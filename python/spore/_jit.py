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

Parameters are different from other constants: an optimizer updates them
in place, spore.grad differentiates with respect to them, and a compiled
graph must not fold them.  So a call from Python (``call``) does not run
the compiled value itself but its *lifted* form (_C.lift, ir_lift in
src/ir/clone.h): every Parameter the value reaches, through any sub-cell
or function, becomes a run-time input of one entry graph, which the
copies of the user's graphs capture as free variables -- the closure
MindSpore's graph of a Cell is.  The Parameters met are recorded here by
the identity of their storage (_C.tensor_id) as the resolver answers them.
"""
import inspect
import textwrap
import types
import weakref

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
    text = "".join(out)
    if first <= 1:  # only a snippet after line 1 may keep its indentation
        text = textwrap.dedent(text)
    return file, text, first - 1


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
            return _answer(self.closure[name], name)
        if name in self.globals:
            return _answer(self.globals[name], name)
        return None

    def resolve_attr(self, path, attr):
        names = path.split(".")
        if names[0] == self.self_name:
            obj = self.owner
            for n in names[1:] + [attr]:
                if isinstance(obj, _C.TensorBase):
                    return None  # self.w.T: the graph reads the attribute of the Parameter
                try:
                    obj = getattr(obj, n)
                except AttributeError:
                    raise GraphModeError(f"{path}.{attr}: {type(obj).__name__} has no attribute '{n}' "
                                         f"(in {self.fn.__qualname__})") from None
            v = _answer(obj, f"{path}.{attr}")
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
_NONE = _C.value("none", "")  # a resolver's answer "None" (plain None: unknown)


def _answer(obj, what):
    return _NONE if obj is None else to_spore(obj, what)

# tensor_id -> Parameter, for every Parameter a resolver answered
_params = weakref.WeakValueDictionary()


def note_params(objs):
    """Records Parameters (as resolvers do) so that lifting finds them."""
    from spore.common.tensor import Parameter
    for p in objs:
        if isinstance(p, Parameter):
            _params[_C.tensor_id(p)] = p


def lift(value, nargs):
    """(lifted Value, [Parameters]) for a compiled value called with nargs
    positional arguments: lifted(*args, *params) computes value(*args)
    with the Parameters as inputs.  (value, []) when it uses none."""
    params, index = [], {}

    def weight(tid):
        p = _params.get(tid)
        if p is None or _C.tensor_id(p) != tid:
            return -1
        i = index.get(tid)
        if i is None:
            i = index[tid] = len(params)
            params.append(p)
        return i
    lifted, n = _C.lift(value, nargs, weight)
    if n == 0:
        return value, []
    return lifted, params


def call(value_fn, cache, args, kwargs):
    """Calls the compiled value ``value_fn()`` on args from Python, through
    its lifted form, cached in ``cache`` per argument count and Cell
    generation.  Keyword arguments take the plain compiled value."""
    from spore.nn.cell import _generation
    if kwargs:
        return value_fn()(*args, **kwargs)
    key = len(args)
    hit = cache.get(key)
    if hit is None or hit[0] != _generation[0]:
        hit = (_generation[0],) + lift(value_fn(), len(args))
        cache[key] = hit
    dev = _C.default_device()
    if dev != "cpu":
        args, hit = _on_device(dev, args, hit, value_fn, cache, key)
    return hit[1](*args, *hit[2])


def _on_device(dev, args, hit, value_fn, cache, key):
    """(args, hit) for a call while a GPU is the default device (helper
    DEVICE): CPU tensor arguments go to the GPU (MindSpore moves host inputs
    to the device), and Parameters still on the CPU (made before
    set_context(device_target="GPU")) move there in place -- the same
    Python objects, new storage -- after which the graphs that captured the
    old storage are compiled and lifted again."""
    from spore.nn.cell import _generation
    moved = tuple(a._to_device("GPU") if isinstance(a, _C.TensorBase) and a.device == "CPU" and
                  not hasattr(a, "requires_grad") else a for a in args)
    stale = [p for p in hit[2] if p.device == "CPU"]
    stale += [a for a in args if isinstance(a, _C.TensorBase) and a.device == "CPU" and hasattr(a, "requires_grad")]
    if stale:
        for p in stale:
            p._migrate(dev)
        _generation[0] += 1
        hit = (_generation[0],) + lift(value_fn(), len(args))
        cache[key] = hit
    return moved, hit


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
        if isinstance(obj, _C.TensorBase) and hasattr(obj, "requires_grad"):
            note_params((obj,))
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


