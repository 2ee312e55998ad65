"""Spore: a deep learning framework written in C, with MindSpore's Python API.

    import spore
    from spore import Tensor, ops, nn
    from spore.ops import operations as P

The package is a thin layer over the C extension ``spore._C``: tensors,
operators and every function of ``spore.ops`` run C code (the same
functions Spore's source language calls), and GRAPH_MODE hands the source
of a Cell's ``construct`` to Spore's own compiler.
"""
from spore import _C
from spore.common import dtype
from spore.common.dtype import (float16, float32, float64, bfloat16, int8, uint8, int32, int64,  # noqa: F401
                                bool_, float_, int_, half, single, double)
from spore.common.tensor import Tensor, Parameter, ParameterTuple
from spore import context
from spore.context import set_context, get_context, GRAPH_MODE, PYNATIVE_MODE
from spore import ops, nn
from spore.ops.composite import grad, value_and_grad, GradOperation  # noqa: F401
from spore import train, dataset  # noqa: F401,E402
from spore.train import Model  # noqa: F401,E402
from spore.train.serialization import save_checkpoint, load_checkpoint, load_param_into_net  # noqa: F401,E402

__version__ = _C.version()

__all__ = ["Tensor", "Parameter", "ParameterTuple", "dtype", "context", "set_context", "get_context",
           "GRAPH_MODE", "PYNATIVE_MODE", "ops", "nn", "grad", "value_and_grad", "set_seed", "get_seed",
           "run_check", "jit", "ms_function", "from_dlpack", "tensor", "train", "dataset", "Model",
           "save_checkpoint", "load_checkpoint", "load_param_into_net"]


def set_seed(seed):
    """Seeds Spore's global generator (Philox): the same seed gives the same
    numbers on CPU and GPU."""
    _C.api("spore.set_seed", seed)


def get_seed():
    return _C.api("spore.get_seed")


def tensor(input_data=None, dtype=None):
    """spore.tensor(data, dtype): a Tensor (the functional spelling)."""
    return Tensor(input_data, dtype)


def from_dlpack(obj):
    """A Tensor sharing the memory of a DLPack producer (a numpy array, a
    PyTorch tensor, or a DLPack capsule), without a copy."""
    return _C.from_dlpack(obj)


def jit(fn=None, mode="PSJit", input_signature=None, **kwargs):
    """Compiles fn from its source with Spore's compiler on the first call,
    in both modes (MindSpore's jit/ms_function)."""
    def deco(f):
        import functools
        from spore import _jit
        lifted = {}

        @functools.wraps(f)
        def wrapper(*args, **kw):
            return _jit.call(lambda: _jit.compile_function(f), lifted, args, kw)
        wrapper._spore_jit_fn = f
        return wrapper
    return deco(fn) if fn is not None else deco


ms_function = jit


def run_check():
    """Checks the install: prints the version, multiplies two tensors on each
    available device, and says whether the result is right."""
    import numpy as np
    from spore.ops import operations as P
    print(f"Spore version: {__version__}")
    targets = ["CPU"]
    ok, why = _C.cuda_available()
    if ok:
        targets.append("GPU")
    for target in targets:
        x = Tensor(np.array([1.0, 2.0, 3.0], np.float32)).to(target)
        y = Tensor(np.array([4.0, 5.0, 6.0], np.float32)).to(target)
        out = P.Mul()(x, y).asnumpy()
        if not np.allclose(out, [4.0, 10.0, 18.0]):
            print(f"The result of multiplication calculation is wrong on [{target}]: {out}")
            return False
        print(f"The result of multiplication calculation is correct, Spore has been installed on "
              f"platform [{target}] successfully!")
    if not ok:
        print(f"(no GPU: {why})")
    return True
