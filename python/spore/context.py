"""spore.context: set_context / get_context (MindSpore's names).

GRAPH_MODE compiles Cells and @jit functions from their source; PYNATIVE_MODE
(the default, as in MindSpore 2.x) runs primitives eagerly.

device_target="GPU" (with device_id, 0 by default) makes cuda:<device_id>
the C library's default device (sp_set_default_device): every tensor made
from then on without a device -- Tensor(ndarray), Tensor([...]), ops.zeros,
ops.randn, the initializers behind Parameters -- is made on the GPU, and a
primitive moves host tensors it is given beside GPU tensors there
(MindSpore moves host data to the device implicitly; PyTorch raises).  A
GRAPH_MODE call moves its CPU tensor arguments, and CPU Parameters it
reaches, to the GPU first (spore/_jit.py).  No usable GPU: RuntimeError
with the reason the C library gives, and the context is unchanged.
device_target="CPU" makes the CPU the default again (tensors already on the
GPU stay there until moved: Tensor.move_to("CPU")).
"""
from spore import _C

GRAPH_MODE = 0
PYNATIVE_MODE = 1

_context = {"mode": PYNATIVE_MODE, "device_target": "CPU", "device_id": 0}


def set_context(**kwargs):
    """set_context(mode=GRAPH_MODE | PYNATIVE_MODE, device_target="CPU" | "GPU",
    device_id=0, ...).  Other MindSpore options are accepted and kept."""
    mode = kwargs.get("mode", _context["mode"])
    if mode not in (GRAPH_MODE, PYNATIVE_MODE):
        raise ValueError(f"set_context: mode must be GRAPH_MODE (0) or PYNATIVE_MODE (1), not {mode!r}")
    target = kwargs.get("device_target", _context["device_target"])
    if not isinstance(target, str) or target.upper() not in ("CPU", "GPU"):
        raise ValueError(f"set_context: device_target must be 'CPU' or 'GPU', not {target!r}")
    target = target.upper()
    device_id = kwargs.get("device_id", _context["device_id"])
    if isinstance(device_id, bool) or not isinstance(device_id, int) or device_id < 0:
        raise ValueError(f"set_context: device_id must be an int >= 0, not {device_id!r}")
    if target == "GPU":
        ok, why = _C.cuda_available()
        if not ok:
            raise RuntimeError(f"set_context(device_target='GPU'): no usable GPU: {why}")
        try:
            _C.set_default_device(f"cuda:{device_id}")
        except RuntimeError as e:
            raise RuntimeError(f"set_context(device_target='GPU', device_id={device_id}): {e}") from None
    elif "device_target" in kwargs:
        _C.set_default_device("cpu")
    _context.update(kwargs)
    _context["mode"] = mode
    _context["device_target"] = target


def get_context(key):
    if key not in _context:
        raise ValueError(f"get_context: unknown key '{key}'")
    return _context[key]
