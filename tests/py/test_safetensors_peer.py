"""Spore's checkpoints against the reference `safetensors` package: files
Spore writes are read by safetensors.numpy (values, dtypes, shapes,
metadata), and files the package writes are read by Spore.

This module needs the `safetensors` package (make test installs it into a
virtual environment); without it the import below fails the module, on
purpose: a peer test that silently skips proves nothing."""
import json
import struct

import numpy as np
import safetensors
import safetensors.numpy

import spore_ct as ct
import spore_data_ct as dc

RNG = np.random.default_rng(7)

CASES = {
    "float32": ("F32", np.float32), "float64": ("F64", np.float64), "float16": ("F16", np.float16),
    "int64": ("I64", np.int64), "int32": ("I32", np.int32), "int8": ("I8", np.int8),
    "uint8": ("U8", np.uint8), "bool": ("BOOL", np.bool_),
}


def sample(dtype, shape):
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype in ("float32", "float64", "float16"):
        return RNG.standard_normal(shape).astype(CASES[dtype][1])
    info = np.iinfo(CASES[dtype][1])
    return RNG.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(CASES[dtype][1])


def test_spore_file_read_by_safetensors(tmp_path):
    arrays = {f"layer.{i}.{d}": sample(d, (2, i + 1, 3)) for i, d in enumerate(CASES)}
    arrays["scalar"] = np.array(3.5, np.float32)
    arrays["empty"] = np.zeros((0, 4), np.float32)
    named = [(k, ct.tensor(v, str(v.dtype) if v.dtype != np.bool_ else "bool")) for k, v in arrays.items()]
    meta = {"step": "1200", "format": "spore", "note": "caf\u00e9 \"quoted\""}
    path = tmp_path / "spore.safetensors"
    dc.checkpoint_save(path, named, meta)

    got = safetensors.numpy.load_file(str(path))
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype, k
        assert got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == meta


def test_bfloat16_layout(tmp_path):
    # numpy has no bfloat16: check the header and the raw bit patterns
    vals = np.array([[1.0, -2.5, 3.140625], [0.0, 65280.0, -0.001953125]], np.float32)
    path = tmp_path / "bf16.safetensors"
    dc.checkpoint_save(path, [("w", ct.tensor(vals, "bfloat16"))])
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["w"] == {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}
    bits = np.frombuffer(raw[8 + n:], np.uint16).reshape(2, 3)
    np.testing.assert_array_equal(bits, ct.bf16_bits(vals))
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert list(f.keys()) == ["w"]


def test_safetensors_file_read_by_spore(tmp_path):
    arrays = {f"t_{d}": sample(d, (3, 4)) for d in CASES}
    arrays["big"] = RNG.standard_normal((64, 33)).astype(np.float32)
    meta = {"epoch": "3", "optimizer": json.dumps({"lr": 0.001, "betas": [0.9, 0.999]})}
    path = tmp_path / "peer.safetensors"
    safetensors.numpy.save_file(arrays, str(path), metadata=meta)
    got, got_meta, order = dc.checkpoint_load(path)
    assert set(got) == set(arrays) and len(order) == len(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype, k
        np.testing.assert_array_equal(got[k], v)
    assert got_meta == meta


def test_round_trip_through_both(tmp_path):
    a = {"x": RNG.standard_normal((5, 5)).astype(np.float64), "y": np.arange(7, dtype=np.int64)}
    p1, p2 = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    safetensors.numpy.save_file(a, str(p1))
    got, _, order = dc.checkpoint_load(p1)
    dc.checkpoint_save(p2, [(k, ct.tensor(got[k], str(got[k].dtype))) for k in order])
    back = safetensors.numpy.load_file(str(p2))
    for k in a:
        np.testing.assert_array_equal(back[k], a[k])
