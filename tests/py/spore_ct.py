"""A ctypes view of libspore for the Python tests.

The real Python package (a CPython extension) comes with its own issue; until
then the tests reach the C library through ctypes, with the struct layouts
of include/spore/core.h and include/spore/ops.h mirrored here.  numpy has no
bfloat16, so bfloat16 tensors travel as their uint16 bit patterns and come
back as float32 values.
"""
import ctypes as C
import os

import numpy as np

MAX_DIMS = 8
MAX_OUTPUTS = 16
SLICE_NONE = -(2**63)

DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]
DT = {n: i for i, n in enumerate(DTYPES)}
FLOATS = ["float32", "float64", "float16", "bfloat16"]
INTS = ["int8", "uint8", "int32", "int64"]
NP_OF = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
         "bfloat16": np.float32, "int8": np.int8, "uint8": np.uint8, "int32": np.int32,
         "int64": np.int64, "bool": np.bool_}


class Tensor(C.Structure):
    _fields_ = [("dtype", C.c_int), ("ndim", C.c_int), ("shape", C.c_int64 * MAX_DIMS),
                ("strides", C.c_int64 * MAX_DIMS), ("offset", C.c_int64), ("buf", C.c_void_p),
                ("refcount", C.c_int)]


class Attr(C.Structure):
    _fields_ = [("name", C.c_char_p), ("kind", C.c_int), ("n", C.c_int), ("i", C.c_int64),
                ("f", C.c_double), ("s", C.c_char_p), ("ints", C.c_int64 * 16)]


class Attrs(C.Structure):
    _fields_ = [("n", C.c_int), ("a", Attr * 16)]


TP = C.POINTER(Tensor)


def _load():
    path = os.environ.get("SPORE_LIB")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "libspore.so")
    lib = C.CDLL(os.path.abspath(path))
    sig = {
        "sp_last_error": (C.c_char_p, []),
        "sp_clear_error": (None, []),
        "sp_cpu_live_bytes": (C.c_int64, []),
        "sp_tensor_from_data": (TP, [C.c_int, C.c_int, C.POINTER(C.c_int64), C.c_void_p]),
        "sp_tensor_release": (None, [TP]),
        "sp_tensor_data": (C.c_void_p, [TP]),
        "sp_tensor_contiguous": (C.c_int, [TP, C.POINTER(TP)]),
        "sp_tensor_permute": (C.c_int, [TP, C.POINTER(C.c_int), C.POINTER(TP)]),
        "sp_tensor_slice": (C.c_int, [TP, C.c_int, C.c_int64, C.c_int64, C.c_int64, C.POINTER(TP)]),
        "sp_tensor_to_string": (C.c_void_p, [TP]),
        "sp_set_num_threads": (C.c_int, [C.c_int]),
        "sp_get_num_threads": (C.c_int, []),
        "sp_op_count": (C.c_int, []),
        "sp_op_name": (C.c_char_p, [C.c_int]),
        "sp_op_find": (C.c_int, [C.c_char_p]),
        "sp_op_dtypes": (C.c_uint32, [C.c_int]),
        "sp_op_num_inputs": (C.c_int, [C.c_int]),
        "sp_op_num_outputs": (C.c_int, [C.c_int]),
        "sp_op_is_inplace": (C.c_int, [C.c_int]),
        "sp_op_is_differentiable": (C.c_int, [C.c_int]),
        "sp_op_call_name": (C.c_int, [C.c_char_p, C.c_int, C.POINTER(TP), C.POINTER(Attrs),
                                      C.POINTER(C.c_int), C.POINTER(TP)]),
        "sp_attrs_init": (None, [C.POINTER(Attrs)]),
        "sp_attrs_set_int": (C.c_int, [C.POINTER(Attrs), C.c_char_p, C.c_int64]),
        "sp_attrs_set_float": (C.c_int, [C.POINTER(Attrs), C.c_char_p, C.c_double]),
        "sp_attrs_set_ints": (C.c_int, [C.POINTER(Attrs), C.c_char_p, C.c_int, C.POINTER(C.c_int64)]),
        "sp_attrs_set_str": (C.c_int, [C.POINTER(Attrs), C.c_char_p, C.c_char_p]),
        "sp_attrs_set_dtype": (C.c_int, [C.POINTER(Attrs), C.c_char_p, C.c_int]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


lib = _load()
libc = C.CDLL(None)


class SporeError(Exception):
    def __init__(self, status, msg):
        super().__init__(f"[{status}] {msg}")
        self.status = status
        self.msg = msg


def last_error():
    return lib.sp_last_error().decode()


def bf16_bits(values):
    """float values -> bfloat16 bit patterns (round to nearest even)."""
    shape = np.shape(values)
    f = np.array(values, dtype=np.float32, order="C").reshape(-1)
    u = f.view(np.uint32).astype(np.uint64)
    nan = np.isnan(f)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r.reshape(shape)


def bf16_values(bits):
    b = np.asarray(bits, dtype=np.uint32)
    return (b.reshape(-1) << 16).view(np.float32).reshape(b.shape)


def round_to(values, dtype):
    """The values a Spore tensor of `dtype` holds when built from `values`,
    as a numpy array (bfloat16 as float32)."""
    if dtype == "bfloat16":
        return bf16_values(bf16_bits(values))
    return np.asarray(values).astype(NP_OF[dtype])


class T:
    """An owned Spore tensor."""

    def __init__(self, ptr):
        if not ptr:
            raise SporeError(-1, last_error())
        self.ptr = ptr

    def __del__(self):
        if getattr(self, "ptr", None):
            lib.sp_tensor_release(self.ptr)
            self.ptr = None

    @property
    def dtype(self):
        return DTYPES[self.ptr.contents.dtype]

    @property
    def shape(self):
        t = self.ptr.contents
        return tuple(t.shape[i] for i in range(t.ndim))

    def numpy(self):
        """A copy of the values (bfloat16 -> float32)."""
        c = TP()
        st = lib.sp_tensor_contiguous(self.ptr, C.byref(c))
        if st:
            raise SporeError(st, last_error())
        ct = T(c)
        dt = self.dtype
        n = int(np.prod(self.shape)) if self.shape else 1
        store = np.uint16 if dt == "bfloat16" else NP_OF[dt]
        nbytes = n * np.dtype(store).itemsize
        buf = (C.c_char * max(nbytes, 1)).from_address(lib.sp_tensor_data(ct.ptr)) if n else b""
        arr = np.frombuffer(bytes(buf[:nbytes]) if n else b"", dtype=store).reshape(self.shape).copy()
        return bf16_values(arr).reshape(self.shape) if dt == "bfloat16" else arr

    def __str__(self):
        p = lib.sp_tensor_to_string(self.ptr)
        s = C.cast(p, C.c_char_p).value.decode()
        libc.free(C.c_void_p(p))
        return s


def tensor(values, dtype, layout="contig"):
    """A Spore tensor of `dtype` holding `values` (rounded to the dtype).

    layout: "contig"; "transposed" (a permuted view of a reversed-axes copy,
    so strides are not C order); "strided" (every other element of a larger
    tensor along axis 0, through sp_tensor_slice)."""
    v = round_to(values, dtype)
    shape = v.shape
    if layout == "transposed" and v.ndim >= 2:
        base = np.ascontiguousarray(np.transpose(v))
        t = _from_np(base, dtype)
        perm = (C.c_int * v.ndim)(*reversed(range(v.ndim)))
        out = TP()
        st = lib.sp_tensor_permute(t.ptr, perm, C.byref(out))
        if st:
            raise SporeError(st, last_error())
        r = T(out)
        assert r.shape == shape
        return r
    if layout == "strided" and v.ndim >= 1:
        big = np.repeat(v, 2, axis=0)
        if big.size:
            big[1::2] = 0
        t = _from_np(np.ascontiguousarray(big), dtype)
        out = TP()
        st = lib.sp_tensor_slice(t.ptr, 0, 0, SLICE_NONE, 2, C.byref(out))
        if st:
            raise SporeError(st, last_error())
        r = T(out)
        assert r.shape == shape, (r.shape, shape)
        return r
    return _from_np(np.array(v, order="C", copy=True), dtype)


def _from_np(v, dtype):
    data = bf16_bits(v) if dtype == "bfloat16" else np.array(v, dtype=NP_OF[dtype], order="C")
    shape = (C.c_int64 * max(1, v.ndim))(*v.shape)
    return T(lib.sp_tensor_from_data(DT[dtype], v.ndim, shape, data.ctypes.data_as(C.c_void_p)))


def make_attrs(attrs):
    a = Attrs()
    lib.sp_attrs_init(C.byref(a))
    keep = []
    for k, v in (attrs or {}).items():
        kb = k.encode()
        keep.append(kb)
        if isinstance(v, DType):
            st = lib.sp_attrs_set_dtype(C.byref(a), kb, DT[v.name])
        elif isinstance(v, bool) or isinstance(v, (int, np.integer)):
            st = lib.sp_attrs_set_int(C.byref(a), kb, int(v))
        elif isinstance(v, (float, np.floating)):
            st = lib.sp_attrs_set_float(C.byref(a), kb, float(v))
        elif isinstance(v, str):
            vb = v.encode()
            keep.append(vb)
            st = lib.sp_attrs_set_str(C.byref(a), kb, vb)
        else:
            vals = [int(x) for x in v]
            arr = (C.c_int64 * max(1, len(vals)))(*vals)
            st = lib.sp_attrs_set_ints(C.byref(a), kb, len(vals), arr)
        if st:
            raise SporeError(st, last_error())
    return a, keep


class DType:
    def __init__(self, name):
        self.name = name


def call(op, inputs, attrs=None):
    """Runs primitive `op` on Spore tensors (T) and returns the outputs (T).
    Raises SporeError with the library's message on failure."""
    n = len(inputs)
    arr = (TP * max(1, n))(*[t.ptr for t in inputs])
    a, keep = make_attrs(attrs)
    outs = (TP * MAX_OUTPUTS)()
    nout = C.c_int(0)
    lib.sp_clear_error()
    st = lib.sp_op_call_name(op.encode(), n, arr, C.byref(a), C.byref(nout), outs)
    del keep
    if st:
        raise SporeError(st, last_error())
    return [T(outs[i]) for i in range(nout.value)]


def op_names():
    return [lib.sp_op_name(i).decode() for i in range(lib.sp_op_count())]


def op_dtypes(name):
    mask = lib.sp_op_dtypes(lib.sp_op_find(name.encode()))
    return [d for i, d in enumerate(DTYPES) if mask & (1 << i)]
