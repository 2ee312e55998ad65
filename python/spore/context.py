"""spore.context: set_context / get_context (MindSpore's names).

GRAPH_MODE compiles Cells and @jit functions from their source; PYNATIVE_MODE
(the default, as in MindSpore 2.x) runs primitives eagerly.  device_target
"GPU" checks that the CUDA backend loaded and found a GPU, else fails with
the reason the C library gives.
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
    if target == "GPU":
        ok, why = _C.cuda_available()
        if not ok:
            raise RuntimeError(f"set_context(device_target='GPU'): no usable GPU: {why}")
    _context.update(kwargs)
    _context["mode"] = mode
    _context["device_target"] = target


def get_context(key):
    if key not in _context:
        raise ValueError(f"get_context: unknown key '{key}'")
    return _context[key]
