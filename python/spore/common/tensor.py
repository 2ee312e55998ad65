"""spore.Tensor, spore.Parameter and spore.ParameterTuple.

The storage, operators, indexing, numpy/DLPack interop and printing are C
(``_C.TensorBase``).  The named methods (``x.sum()``, ``x.reshape(2, 3)``,
``x.astype(spore.int32)``, ...) are generated here from the Tensor rows of
the runtime's API table (src/runtime/api.def), each forwarding to the same
C function a program in GRAPH_MODE calls, so both modes share one
implementation of every method.
"""
from spore import _C
from spore.common import dtype as _dtype

__all__ = ["Tensor", "Parameter", "ParameterTuple"]

_api = _C.api


class Tensor(_C.TensorBase):
    """A tensor: ``Tensor(input_data, dtype=None)`` from a numpy array, a
    (nested) list, a Python scalar or another Tensor."""

    __slots__ = ()

    def to(self, device_or_dtype):
        """``to("GPU")``/``to("CPU")``: a copy on that device; ``to(dtype)``:
        a cast."""
        if isinstance(device_or_dtype, str):
            return self._to_device(device_or_dtype)
        return _api("Tensor.to", self, device_or_dtype)

    def move_to(self, to, blocking=True):
        """MindSpore's ``move_to("GPU" | "CPU", blocking=True)``: a copy on
        that device (the tensor itself when it is there already).  Copies
        are synchronous; ``blocking`` is accepted for MindSpore's sake."""
        if not isinstance(blocking, bool):
            raise ValueError(f"move_to: blocking must be a bool, not {type(blocking).__name__}")
        if to not in ("GPU", "CPU"):
            raise ValueError(f"move_to: 'to' must be 'GPU' or 'CPU' (Spore has no {to!r} device)")
        return self._to_device(to)

    def asnumpy(self):
        """A numpy array sharing the memory of a CPU tensor (copied to the
        CPU first when on the GPU; bfloat16 becomes float32)."""
        return _C.TensorBase.asnumpy(self)

    def __reduce__(self):
        return (Tensor, (self.asnumpy(), self.dtype))


_C_METHODS = {"item", "tolist", "to"}
for _q in _C.api_names():
    if _q.startswith("Tensor."):
        _n = _q[len("Tensor."):]
        if _n not in _C_METHODS:
            # a C method descriptor (_C.ApiMethod): x.sum() calls the API
            # table directly, with x as the first argument
            setattr(Tensor, _n, _C.value("api", _q))
del _q, _n

_C._register(Tensor, _dtype._table())


class Parameter(Tensor):
    """A trainable tensor of a Cell: ``Parameter(default_input, name=None,
    requires_grad=True)``.  It shares the memory of the tensor it is made
    from."""

    __slots__ = ("name", "requires_grad", "layerwise_parallel", "parallel_optimizer", "__weakref__")

    def __new__(cls, default_input, name=None, requires_grad=True, layerwise_parallel=False,
                parallel_optimizer=True):
        return Tensor.__new__(cls, default_input)

    def __init__(self, default_input, name=None, requires_grad=True, layerwise_parallel=False,
                 parallel_optimizer=True):
        self.name = name
        self.requires_grad = requires_grad
        self.layerwise_parallel = layerwise_parallel
        self.parallel_optimizer = parallel_optimizer

    def __repr__(self):
        return f"Parameter (name={self.name}, shape={self.shape}, dtype={self.dtype}, " \
               f"requires_grad={self.requires_grad})"

    def set_data(self, data):
        """Replaces the values (a Tensor of the same shape)."""
        if not isinstance(data, _C.TensorBase):
            data = Tensor(data, self.dtype)
        self._set_value(data)
        return self

    @property
    def data(self):
        return self

    def clone(self, init="same"):
        return Parameter(Tensor(self.asnumpy().copy()), self.name, self.requires_grad)

    def __reduce__(self):
        return (Parameter, (Tensor(self.asnumpy(), self.dtype), self.name, self.requires_grad))


class ParameterTuple(tuple):
    """A tuple of Parameters (what ``net.trainable_params()`` gives an
    optimizer or ``GradOperation(get_by_list=True)``)."""

    def __new__(cls, iterable):
        items = tuple(iterable)
        for p in items:
            if not isinstance(p, Parameter):
                raise TypeError(f"ParameterTuple holds Parameters, not {type(p).__name__}")
        return tuple.__new__(cls, items)

    def clone(self, prefix, init="same"):
        return ParameterTuple(Parameter(Tensor(p.asnumpy().copy()), f"{prefix}.{p.name}", p.requires_grad)
                              for p in self)
