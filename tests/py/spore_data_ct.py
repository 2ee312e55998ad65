"""ctypes signatures of include/spore/data.h and include/spore/io.h for the
Python tests, on top of spore_ct (the same library handle and Tensor
struct).  Kept in its own module so the core harness stays as it is; the
Python package wraps these functions properly later."""
import ctypes as C

import numpy as np

import spore_ct as ct
from spore_ct import TP, lib


class Checkpoint(C.Structure):
    _fields_ = [("n", C.c_int), ("names", C.POINTER(C.c_char_p)), ("tensors", C.POINTER(TP)),
                ("nmeta", C.c_int), ("meta_keys", C.POINTER(C.c_char_p)),
                ("meta_values", C.POINTER(C.c_char_p))]


_SIG = {
    "sp_transform_rescale": (C.c_void_p, [C.c_double, C.c_double]),
    "sp_transform_normalize": (C.c_void_p, [C.c_int, C.POINTER(C.c_double), C.POINTER(C.c_double)]),
    "sp_transform_hwc2chw": (C.c_void_p, []),
    "sp_transform_random_crop": (C.c_void_p, [C.c_int64, C.c_int64, C.POINTER(C.c_int64), C.c_int,
                                              C.c_double]),
    "sp_transform_random_horizontal_flip": (C.c_void_p, [C.c_double]),
    "sp_transform_resize": (C.c_void_p, [C.c_int64, C.c_int64, C.c_int]),
    "sp_transform_type_cast": (C.c_void_p, [C.c_int]),
    "sp_transform_release": (None, [C.c_void_p]),
    "sp_transform_apply": (C.c_int, [C.c_void_p, C.c_int, C.POINTER(TP), C.POINTER(TP),
                                     C.c_uint64, C.c_uint64]),
    "sp_philox4x32": (None, [C.c_uint64, C.c_uint64, C.c_uint64, C.POINTER(C.c_uint32)]),
    "sp_mnist_load": (C.c_int, [C.c_char_p, C.c_char_p, C.POINTER(TP), C.POINTER(TP)]),
    "sp_idx_load": (C.c_int, [C.c_char_p, C.POINTER(TP)]),
    "sp_checkpoint_save": (C.c_int, [C.c_char_p, C.c_int, C.POINTER(C.c_char_p), C.POINTER(TP),
                                     C.c_int, C.POINTER(C.c_char_p), C.POINTER(C.c_char_p)]),
    "sp_checkpoint_load": (C.c_int, [C.c_char_p, C.POINTER(C.POINTER(Checkpoint))]),
    "sp_checkpoint_free": (None, [C.POINTER(Checkpoint)]),
}
for _name, (_res, _args) in _SIG.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def check(st):
    if st:
        raise ct.SporeError(st, ct.last_error())


class Transform:
    """An owned sp_transform."""

    def __init__(self, ptr):
        if not ptr:
            raise ct.SporeError(-1, ct.last_error())
        self.ptr = ptr

    def __del__(self):
        if getattr(self, "ptr", None):
            lib.sp_transform_release(self.ptr)
            self.ptr = None

    def __call__(self, x, seed=0, counter=0):
        """Applies the transform to a numpy array (dtype kept) or a T."""
        t = x if isinstance(x, ct.T) else ct.tensor(x, str(np.asarray(x).dtype) if np.asarray(x).dtype != np.bool_ else "bool")
        inp = (TP * 1)(t.ptr)
        out = (TP * 1)()
        lib.sp_clear_error()
        check(lib.sp_transform_apply(self.ptr, 1, inp, out, seed, counter))
        return ct.T(out[0]).numpy()


def rescale(r, s):
    return Transform(lib.sp_transform_rescale(r, s))


def normalize(mean, std):
    n = len(mean)
    return Transform(lib.sp_transform_normalize(n, (C.c_double * n)(*mean), (C.c_double * n)(*std)))


def hwc2chw():
    return Transform(lib.sp_transform_hwc2chw())


def random_crop(h, w, padding=(0, 0, 0, 0), pad_if_needed=False, fill=0.0):
    return Transform(lib.sp_transform_random_crop(h, w, (C.c_int64 * 4)(*padding),
                                                  int(pad_if_needed), fill))


def random_horizontal_flip(prob):
    return Transform(lib.sp_transform_random_horizontal_flip(prob))


def resize(h, w=0, nearest=False):
    return Transform(lib.sp_transform_resize(h, w, 1 if nearest else 0))


def type_cast(dtype):
    return Transform(lib.sp_transform_type_cast(ct.DT[dtype]))


def philox(key, counter):
    """The four uint32 lanes Spore's transforms draw for (seed, counter)."""
    out = (C.c_uint32 * 4)()
    lib.sp_philox4x32(key, counter, 0, out)
    return list(out)


def checkpoint_save(path, named, meta=None):
    """named: list of (name, T); meta: dict of str -> str."""
    n = len(named)
    names = (C.c_char_p * max(1, n))(*[k.encode() for k, _ in named])
    ts = (TP * max(1, n))(*[t.ptr for _, t in named])
    meta = meta or {}
    keys = (C.c_char_p * max(1, len(meta)))(*[k.encode() for k in meta])
    vals = (C.c_char_p * max(1, len(meta)))(*[v.encode() for v in meta.values()])
    lib.sp_clear_error()
    check(lib.sp_checkpoint_save(str(path).encode(), n, names, ts, len(meta), keys, vals))


def checkpoint_load(path):
    """Returns ({name: numpy array}, {key: value}, [names in order]); bf16 as float32."""
    p = C.POINTER(Checkpoint)()
    lib.sp_clear_error()
    check(lib.sp_checkpoint_load(str(path).encode(), C.byref(p)))
    try:
        c = p.contents
        order = [c.names[i].decode() for i in range(c.n)]
        arrays = {}
        for i in range(c.n):
            t = ct.T(c.tensors[i])
            lib_retain_free = t.numpy()
            t.ptr = None  # borrowed: the checkpoint owns it
            arrays[order[i]] = lib_retain_free
        meta = {c.meta_keys[i].decode(): c.meta_values[i].decode() for i in range(c.nmeta)}
        return arrays, meta, order
    finally:
        lib.sp_checkpoint_free(p)
