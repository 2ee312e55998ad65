"""Checkpoints: spore.train.serialization (save_checkpoint, load_checkpoint,
load_param_into_net) over Spore's safetensors I/O in C.

What is proven here: every dtype (bfloat16, float16, 0-d tensors) round-trips
bit for bit; the files are safetensors (the `safetensors` package reads them
and Spore reads its files); append_dict, the prefix filters, choice_func and
strict_load follow MindSpore's rules; loading writes into the existing
Parameters (same object, same memory); a mismatch is an error naming the
parameter and writes nothing; damaged files (every truncation, random byte
flips, files that are not checkpoints) are ValueErrors, never crashes; a
save that fails part-way leaves the previous file untouched; and training
resumed from a checkpoint continues exactly as if it had never stopped.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import spore
from spore import Tensor, Parameter, nn, ops
from spore.train.serialization import (save_checkpoint, load_checkpoint, load_param_into_net,
                                       async_ckpt_thread_status)

_DTYPES = [("f32", spore.float32, np.float32), ("f64", spore.float64, np.float64),
           ("f16", spore.float16, np.float16), ("bf16", spore.bfloat16, np.float32),
           ("i8", spore.int8, np.int8), ("u8", spore.uint8, np.uint8), ("i32", spore.int32, np.int32),
           ("i64", spore.int64, np.int64), ("b", spore.bool_, np.bool_)]


def _values(np_type, shape, seed):
    rng = np.random.RandomState(seed)
    if np_type == np.bool_:
        return rng.rand(*shape) > 0.5
    if np.issubdtype(np_type, np.integer):
        info = np.iinfo(np_type)
        return rng.randint(max(info.min, -1000), min(info.max, 1000), size=shape).astype(np_type)
    # bfloat16 keeps 8 bits of mantissa: values it holds exactly, so == compares
    return (np.round(rng.randn(*shape) * 64) / 64).astype(np_type)


class Leaf(nn.Cell):
    """One parameter of every dtype, each in two shapes (2-d and 0-d)."""

    def __init__(self, seed):
        super().__init__()
        for i, (tag, dt, npt) in enumerate(_DTYPES):
            setattr(self, f"m_{tag}", Parameter(Tensor(_values(npt, (3, 4), seed + i), dt), requires_grad=False))
            setattr(self, f"s_{tag}", Parameter(Tensor(_values(npt, (), seed + 50 + i), dt), requires_grad=False))


class Net(nn.Cell):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.RandomState(seed)
        self.w = Parameter(Tensor(rng.randn(4, 3).astype(np.float32)))
        self.inner = Leaf(seed)
        self.stat = Parameter(Tensor(rng.randn(3).astype(np.float32)), requires_grad=False)


def _snapshot(net):
    return {p.name: (p.dtype, p.asnumpy().copy()) for _, p in net.parameters_and_names()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0], k
        assert a[k][1].shape == b[k][1].shape, k
        assert np.array_equal(a[k][1], b[k][1]), k


def test_exported_where_mindspore_has_them():
    import spore.train
    from spore.train import serialization
    for name in ("save_checkpoint", "load_checkpoint", "load_param_into_net"):
        assert getattr(spore, name) is getattr(serialization, name)  # ms.save_checkpoint
        assert getattr(spore.train, name) is getattr(serialization, name)


# ---- round trip ---------------------------------------------------------------------------------

def test_cell_round_trip_every_dtype_in_place(tmp_path):
    src, dst = Net(1), Net(2)
    before = _snapshot(src)
    save_checkpoint(src, str(tmp_path / "net"))
    path = tmp_path / "net.ckpt"
    assert path.exists() and not (tmp_path / "net").exists()
    objs = {p.name: (p, p.data_ptr()) for _, p in dst.parameters_and_names()}
    assert not np.array_equal(dst.w.asnumpy(), src.w.asnumpy())
    param_dict = load_checkpoint(str(path))
    assert set(param_dict) == set(before)
    for k, p in param_dict.items():
        assert isinstance(p, Parameter) and p.name == k
    not_loaded, unused = load_param_into_net(dst, param_dict)
    assert (not_loaded, unused) == ([], [])
    _assert_same(_snapshot(dst), before)
    # the same objects and the same memory: compiled graphs keep seeing them
    for _, p in dst.parameters_and_names():
        assert objs[p.name][0] is p and p.data_ptr() == objs[p.name][1]
    assert dst.inner.s_bf16.shape == () and dst.inner.s_bf16.dtype == spore.bfloat16
    assert dst.inner.m_f16.dtype == spore.float16


def test_load_checkpoint_with_net_argument(tmp_path):
    src, dst = Net(3), Net(4)
    save_checkpoint(src, str(tmp_path / "a.ckpt"))
    d = load_checkpoint(str(tmp_path / "a.ckpt"), net=dst)
    assert isinstance(d, dict) and len(d) == len(_snapshot(src))
    _assert_same(_snapshot(dst), _snapshot(src))


def test_save_list_and_dict_forms(tmp_path):
    net = Net(5)
    params = list(net.trainable_params())
    save_checkpoint(params, str(tmp_path / "p.ckpt"))
    assert list(load_checkpoint(str(tmp_path / "p.ckpt"))) == ["w"]
    t = Tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    save_checkpoint([{"name": "a", "data": t}, {"name": "b", "data": net.stat}], str(tmp_path / "l.ckpt"))
    d = load_checkpoint(str(tmp_path / "l.ckpt"))
    assert list(d) == ["a", "b"]
    assert d["a"].dtype == spore.int32 and np.array_equal(d["a"].asnumpy(), t.asnumpy())
    # a dict, e.g. what load_checkpoint returned, saves again unchanged
    save_checkpoint(d, str(tmp_path / "d.ckpt"))
    d2 = load_checkpoint(str(tmp_path / "d.ckpt"))
    assert list(d2) == ["a", "b"] and np.array_equal(d2["b"].asnumpy(), net.stat.asnumpy())
    with pytest.raises(TypeError):
        save_checkpoint(42, str(tmp_path / "x.ckpt"))
    with pytest.raises(TypeError):
        save_checkpoint([{"name": "a", "data": np.zeros(3)}], str(tmp_path / "x.ckpt"))
    with pytest.raises(ValueError, match="twice"):
        save_checkpoint([{"name": "a", "data": t}, {"name": "a", "data": t}], str(tmp_path / "x.ckpt"))
    with pytest.raises(TypeError):
        save_checkpoint(net, 123)
    # two different Parameters under one name in a Cell: refused, not one silently dropped
    twin = Net(5)
    twin.inner.m_f32.name = "w"
    with pytest.raises(ValueError, match="'w' appears twice"):
        save_checkpoint(twin, str(tmp_path / "x.ckpt"))
    # one Parameter reachable by two paths is saved once
    shared = Net(5)
    shared.alias = shared.w
    save_checkpoint(shared, str(tmp_path / "shared.ckpt"))
    assert list(load_checkpoint(str(tmp_path / "shared.ckpt"))).count("w") == 1
    assert not (tmp_path / "x.ckpt").exists()


def test_suffix_and_format(tmp_path):
    net = Net(6)
    save_checkpoint(net, str(tmp_path / "a.ckpt"))
    save_checkpoint(net, str(tmp_path / "b"))
    save_checkpoint(net, str(tmp_path / "c.bin"))
    save_checkpoint(net, str(tmp_path / "d"), format="safetensors")
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt", "b.ckpt", "c.bin.ckpt", "d.safetensors"]
    with pytest.raises(IsADirectoryError):
        save_checkpoint(net, str(tmp_path))
    with pytest.raises(ValueError):
        save_checkpoint(net, str(tmp_path / "e"), format="pickle")
    # any suffix loads
    _assert_same({k: (v.dtype, v.asnumpy()) for k, v in load_checkpoint(str(tmp_path / "d.safetensors")).items()},
                 _snapshot(net))


def test_choice_func_on_save(tmp_path):
    save_checkpoint(Net(7), str(tmp_path / "c.ckpt"), choice_func=lambda n: n.startswith("inner.m_"))
    names = list(load_checkpoint(str(tmp_path / "c.ckpt")))
    assert names and all(n.startswith("inner.m_") for n in names) and len(names) == len(_DTYPES)


# ---- the file is safetensors ----------------------------------------------------------------------

def test_safetensors_package_reads_spore_files(tmp_path):
    from safetensors.numpy import load_file as np_load
    from safetensors import safe_open
    net = Net(8)
    save_checkpoint(net, str(tmp_path / "s.ckpt"), append_dict={"epoch_num": 7, "note": "hello"})
    path = str(tmp_path / "s.ckpt")
    with safe_open(path, framework="np") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert keys == set(_snapshot(net)) | {"epoch_num"}
    assert meta["spore.str.note"] == "hello" and meta["framework"] == "spore"
    # numpy has no bfloat16: read the rest with the numpy loader
    save_checkpoint(net, str(tmp_path / "nobf.ckpt"), choice_func=lambda n: "bf16" not in n)
    arrays = np_load(str(tmp_path / "nobf.ckpt"))
    for k, (dt, v) in _snapshot(net).items():
        if "bf16" in k:
            continue
        assert arrays[k].dtype == v.dtype and arrays[k].shape == v.shape and np.array_equal(arrays[k], v), k
    # bfloat16 through the torch loader
    import torch
    from safetensors.torch import load_file as torch_load
    tt = torch_load(path)
    assert tt["inner.m_bf16"].dtype == torch.bfloat16 and tt["inner.s_bf16"].shape == ()
    assert np.array_equal(tt["inner.m_bf16"].float().numpy(), net.inner.m_bf16.asnumpy())
    assert tt["epoch_num"].dtype == torch.int64 and tt["epoch_num"].item() == 7


def test_spore_reads_safetensors_package_files(tmp_path):
    from safetensors.numpy import save_file
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array(5, dtype=np.int64)
    save_file({"fc.weight": a, "step": b}, str(tmp_path / "hf.safetensors"), metadata={"format": "np"})
    d = load_checkpoint(str(tmp_path / "hf.safetensors"))
    assert set(d) == {"fc.weight", "step"}  # foreign metadata is not an entry
    assert np.array_equal(d["fc.weight"].asnumpy(), a) and d["step"].asnumpy() == 5


# ---- append_dict, filters -----------------------------------------------------------------------

def test_append_dict(tmp_path):
    net = Net(9)
    w = Tensor(np.array([1.5, 2.5], np.float32))
    save_checkpoint(net, str(tmp_path / "a.ckpt"),
                    append_dict={"epoch_num": 12, "lr": 0.25, "done": True, "tag": "resnet", "extra": w})
    d = load_checkpoint(str(tmp_path / "a.ckpt"))
    assert d["epoch_num"].dtype == spore.int64 and d["epoch_num"].asnumpy() == 12
    assert d["lr"].dtype == spore.float32 and d["lr"].asnumpy() == np.float32(0.25)
    assert d["done"].dtype == spore.bool_ and bool(d["done"].asnumpy())
    assert d["tag"] == "resnet"
    assert np.array_equal(d["extra"].asnumpy(), [1.5, 2.5])
    # entries the network lacks come back as ckpt_not_load
    not_loaded, unused = load_param_into_net(Net(10), d)
    assert not_loaded == [] and sorted(unused) == ["done", "epoch_num", "extra", "lr", "tag"]
    with pytest.raises(TypeError):
        save_checkpoint(net, str(tmp_path / "b.ckpt"), append_dict={"x": [1, 2]})
    with pytest.raises(TypeError):
        save_checkpoint(net, str(tmp_path / "b.ckpt"), append_dict=[("x", 1)])
    with pytest.raises(ValueError, match="'w'"):
        save_checkpoint(net, str(tmp_path / "b.ckpt"), append_dict={"w": 1})
    assert not (tmp_path / "b.ckpt").exists()


def test_filter_specify_choice(tmp_path):
    save_checkpoint(Net(11), str(tmp_path / "f.ckpt"), append_dict={"inner_count": 3})
    path = str(tmp_path / "f.ckpt")
    all_names = set(load_checkpoint(path))
    d = load_checkpoint(path, filter_prefix="inner.")
    assert set(d) == {n for n in all_names if not n.startswith("inner.")} == {"w", "stat", "inner_count"}
    d = load_checkpoint(path, filter_prefix=["inner.m_", "w"])
    assert set(d) == {n for n in all_names if not n.startswith(("inner.m_", "w"))}
    d = load_checkpoint(path, specify_prefix=("inner.s_",))
    assert set(d) == {n for n in all_names if n.startswith("inner.s_")}
    d = load_checkpoint(path, choice_func=lambda n: n in ("w", "stat"))
    assert set(d) == {"w", "stat"}
    # the prefixes override choice_func (MindSpore)
    d = load_checkpoint(path, filter_prefix="inner", choice_func=lambda n: False)
    assert set(d) == {"w", "stat"}
    with pytest.raises(ValueError, match="empty"):
        load_checkpoint(path, filter_prefix=("inner", "w", "stat"))
    with pytest.raises(TypeError):
        load_checkpoint(path, filter_prefix=3)
    with pytest.raises(TypeError):
        load_checkpoint(path, specify_prefix=["a", 1])
    with pytest.raises(ValueError):
        load_checkpoint(path, filter_prefix="")
    # a filtered dict loads what it has; the rest are reported
    net = Net(12)
    not_loaded, unused = load_param_into_net(net, load_checkpoint(path, filter_prefix="inner."))
    assert sorted(not_loaded) == sorted(n for n in all_names if n.startswith("inner."))
    assert unused == ["inner_count"]


# ---- strict_load, mismatches --------------------------------------------------------------------

class Two(nn.Cell):
    def __init__(self, dt=spore.float32, shape=(2, 3), fill=0.0):
        super().__init__()
        self.a = Parameter(Tensor(np.full(shape, fill, np.float32), dt))
        self.b = Parameter(Tensor(np.full((3,), fill, np.float32)))


def test_dtype_conversion_and_strict_load(tmp_path):
    src = Two(spore.float16, fill=1.5)
    save_checkpoint(src, str(tmp_path / "h.ckpt"))
    d = load_checkpoint(str(tmp_path / "h.ckpt"))
    # not strict: float16 -> float32 converts (MindSpore)
    dst = Two(spore.float32)
    a = dst.a
    assert load_param_into_net(dst, d) == ([], [])
    assert dst.a is a and dst.a.dtype == spore.float32 and np.all(dst.a.asnumpy() == 1.5)
    # strict: the dtypes must agree; the error names the parameter and writes nothing
    dst = Two(spore.float32, fill=-1.0)
    with pytest.raises(RuntimeError, match=r"\ba\b.*Float32.*Float16"):
        load_param_into_net(dst, d, strict_load=True)
    assert np.all(dst.a.asnumpy() == -1.0) and np.all(dst.b.asnumpy() == -1.0)
    with pytest.raises(RuntimeError, match="same type"):
        load_checkpoint(str(tmp_path / "h.ckpt"), net=Two(spore.float32), strict_load=True)
    # int into float is never converted
    save_checkpoint({"a": Tensor(np.ones((2, 3), np.int32)), "b": Tensor(np.ones(3, np.float32))},
                    str(tmp_path / "i.ckpt"))
    dst = Two(spore.float32, fill=-1.0)
    with pytest.raises(RuntimeError, match="same type"):
        load_checkpoint(str(tmp_path / "i.ckpt"), net=dst)
    assert np.all(dst.b.asnumpy() == -1.0)
    # int32 -> int64 converts when not strict
    save_checkpoint({"a": Tensor(np.full((2, 3), 7, np.int32)), "b": Tensor(np.ones(3, np.float32))},
                    str(tmp_path / "j.ckpt"))
    dst = Two(spore.int64)
    load_checkpoint(str(tmp_path / "j.ckpt"), net=dst)
    assert dst.a.dtype == spore.int64 and np.all(dst.a.asnumpy() == 7)


def test_shape_mismatch_names_parameter_and_writes_nothing(tmp_path):
    save_checkpoint(Two(fill=2.0, shape=(3, 2)), str(tmp_path / "s.ckpt"))
    dst = Two(fill=-1.0)
    ptr = dst.a.data_ptr()
    for strict in (False, True):
        with pytest.raises(RuntimeError, match=r"\ba\b.*\(2, 3\).*\(3, 2\)"):
            load_checkpoint(str(tmp_path / "s.ckpt"), net=dst, strict_load=strict)
        # b matched and was fine, but nothing was written
        assert np.all(dst.b.asnumpy() == -1.0) and np.all(dst.a.asnumpy() == -1.0)
        assert dst.a.shape == (2, 3) and dst.a.data_ptr() == ptr


def test_prefix_matching_when_not_strict(tmp_path):
    # a checkpoint whose names carry a wrapper's prefix, loaded into the bare network
    src = Two(fill=3.0)
    save_checkpoint({"network." + p.name: p for _, p in src.parameters_and_names()}, str(tmp_path / "w.ckpt"))
    d = load_checkpoint(str(tmp_path / "w.ckpt"))
    dst = Two(fill=0.0)
    assert load_param_into_net(dst, d, strict_load=True) == (["a", "b"], ["network.a", "network.b"])
    assert np.all(dst.a.asnumpy() == 0.0)
    assert load_param_into_net(dst, d) == ([], [])
    assert np.all(dst.a.asnumpy() == 3.0) and np.all(dst.b.asnumpy() == 3.0)
    # only whole dotted components: "xa" is not "<prefix>.a"
    dst = Two(fill=0.0)
    assert load_param_into_net(dst, {"xa": d["network.a"]}) == (["a", "b"], ["xa"])


def test_load_param_into_net_argument_errors():
    with pytest.raises(TypeError):
        load_param_into_net(object(), {})
    with pytest.raises(TypeError):
        load_param_into_net(Two(), [("a", Tensor(np.zeros((2, 3), np.float32)))])
    with pytest.raises(TypeError):
        load_param_into_net(Two(), {"a": np.zeros((2, 3), np.float32)})
    with pytest.raises(TypeError):
        load_param_into_net(Two(), {"a": "text"})
    # a plain Tensor value works like a Parameter
    net = Two()
    assert load_param_into_net(net, {"a": Tensor(np.ones((2, 3), np.float32))}) == (["b"], [])
    assert np.all(net.a.asnumpy() == 1.0)


# ---- damaged files --------------------------------------------------------------------------------

def test_missing_and_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(str(tmp_path / "nope.ckpt"))
    cases = {"empty.ckpt": b"", "text.ckpt": b"hello, this is not a checkpoint\n" * 10,
             "short.ckpt": b"\x01\x02\x03", "huge_header.ckpt": (2 ** 62).to_bytes(8, "little") + b"{}      ",
             "bad_json.ckpt": (8).to_bytes(8, "little") + b"{\"a\":1  ",
             "zeros.ckpt": bytes(4096)}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=name):
            load_checkpoint(str(p))
    os.mkdir(tmp_path / "dir.ckpt")
    with pytest.raises(ValueError, match="dir.ckpt"):
        load_checkpoint(str(tmp_path / "dir.ckpt"))


def _real_checkpoint_bytes(tmp_path):
    save_checkpoint(Net(13), str(tmp_path / "good.ckpt"), append_dict={"epoch_num": 3, "s": "x"})
    return (tmp_path / "good.ckpt").read_bytes()


def test_every_truncation_is_an_error(tmp_path):
    good = _real_checkpoint_bytes(tmp_path)
    header = 8 + int.from_bytes(good[:8], "little")
    # every cut in the first 64 bytes, every 3rd in the rest of the header, every 7th in the data,
    # and the last bytes
    cuts = sorted(set(range(0, 64)) | set(range(64, header + 1, 3)) | set(range(header, len(good), 7))
                  | set(range(len(good) - 9, len(good))))
    p = tmp_path / "cut.ckpt"
    for n in cuts:
        p.write_bytes(good[:n])
        with pytest.raises(ValueError, match="cut.ckpt"):
            load_checkpoint(str(p))
    # and the same bytes plus a tail: the data must tile the file exactly
    p.write_bytes(good + b"\0")
    with pytest.raises(ValueError, match="cut.ckpt"):
        load_checkpoint(str(p))


def test_random_byte_flips_never_crash(tmp_path):
    good = _real_checkpoint_bytes(tmp_path)
    header = 8 + int.from_bytes(good[:8], "little")
    rng = np.random.RandomState(0)
    p = tmp_path / "flip.ckpt"
    failed = loaded = 0
    for i in range(600):
        b = bytearray(good)
        # most flips in the header, where the parser has decisions to make
        for _ in range(1 + i % 3):
            k = int(rng.randint(0, header)) if rng.rand() < 0.8 else int(rng.randint(0, len(b)))
            b[k] ^= 1 << int(rng.randint(0, 8))
        p.write_bytes(bytes(b))
        try:
            d = load_checkpoint(str(p))
        except ValueError as e:
            assert "flip.ckpt" in str(e)
            failed += 1
            continue
        loaded += 1
        for k, v in d.items():
            assert isinstance(k, str)
            if isinstance(v, Parameter):
                assert v.asnumpy().size == int(np.prod(v.shape))
    assert failed > 100  # the header flips are caught
    assert failed + loaded == 600


# ---- atomic saves -------------------------------------------------------------------------------

_FSIZE_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from spore import Tensor
    from spore.train.serialization import save_checkpoint
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))
    big = Tensor(np.ones((1 << 16,), np.float32))   # 256 KiB: the write stops at 64 KiB
    try:
        save_checkpoint({"big": big}, sys.argv[1])
    except OSError as e:
        print("OSError:", e)
        sys.exit(0)
    sys.exit(3)
""")


def test_failed_save_leaves_old_file_untouched(tmp_path):
    path = tmp_path / "keep.ckpt"
    save_checkpoint(Two(fill=4.0), str(path))
    old = path.read_bytes()
    # a write that fails part-way (the file-size limit stands in for a full disk)
    r = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(path)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keep.ckpt" in r.stdout
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["keep.ckpt"]  # no temporary file left behind
    # a directory that does not exist
    with pytest.raises(OSError):
        save_checkpoint(Two(), str(tmp_path / "no" / "such" / "dir" / "x.ckpt"))
    # a directory that cannot be written (only meaningful when not root)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        save_checkpoint(Two(fill=5.0), str(ro / "k.ckpt"))
        before = (ro / "k.ckpt").read_bytes()
        os.chmod(ro, 0o500)
        try:
            with pytest.raises(OSError):
                save_checkpoint(Two(fill=6.0), str(ro / "k.ckpt"))
        finally:
            os.chmod(ro, 0o700)
        assert (ro / "k.ckpt").read_bytes() == before
    # an argument error before anything is written
    with pytest.raises(TypeError):
        save_checkpoint({"a": "ok", "b": 3}, str(path))
    assert path.read_bytes() == old
    assert load_param_into_net(Two(), load_checkpoint(str(path))) == ([], [])


def test_async_save_snapshots_values(tmp_path):
    net = Two(fill=1.0)
    save_checkpoint(net, str(tmp_path / "as.ckpt"), async_save=True)
    # changing the parameter right away does not change what is written
    net.a.set_data(Tensor(np.full((2, 3), 9.0, np.float32)))
    d = load_checkpoint(str(tmp_path / "as.ckpt"))  # waits for the writer
    assert not async_ckpt_thread_status()
    assert np.all(d["a"].asnumpy() == 1.0)
    # an async save that fails reports its error at the next save
    save_checkpoint(net, str(tmp_path / "missing" / "x.ckpt"), async_save=True)
    with pytest.raises(OSError):
        save_checkpoint(net, str(tmp_path / "ok.ckpt"))
    save_checkpoint(net, str(tmp_path / "ok.ckpt"))
    assert np.all(load_checkpoint(str(tmp_path / "ok.ckpt"))["a"].asnumpy() == 9.0)


@pytest.mark.skipif(not spore._C.cuda_available()[0], reason="no GPU")
def test_load_into_gpu_parameter_in_place(tmp_path):
    save_checkpoint(Two(fill=2.5), str(tmp_path / "g.ckpt"))
    dst = Two()
    gpu = Parameter(Tensor(np.zeros((2, 3), np.float32)).to("GPU"), name="a")
    dst.a = gpu
    ptr = gpu.data_ptr()
    assert load_param_into_net(dst, load_checkpoint(str(tmp_path / "g.ckpt"))) == ([], [])
    assert dst.a is gpu and gpu.data_ptr() == ptr and gpu.device == "GPU"
    assert np.all(gpu.asnumpy() == 2.5)
    save_checkpoint(dst, str(tmp_path / "g2.ckpt"))
    assert np.all(load_checkpoint(str(tmp_path / "g2.ckpt"))["a"].asnumpy() == 2.5)


def test_no_leaks_in_save_load_and_errors(tmp_path):
    """Saves, loads, in-place loads and every kind of failure, repeated,
    leave Spore's CPU allocator and Python's heap where they were."""
    import gc
    import tracemalloc
    src, dst = Net(14), Net(15)
    good, bad = tmp_path / "good.ckpt", tmp_path / "bad.ckpt"
    save_checkpoint(src, str(good))
    bad.write_bytes(good.read_bytes()[:200])
    mism = tmp_path / "mism.ckpt"
    save_checkpoint(Two(shape=(3, 2)), str(mism))

    def cycle():
        save_checkpoint(src, str(good), append_dict={"epoch_num": 1, "s": "x"})
        load_checkpoint(str(good), net=dst)
        for call in (lambda: load_checkpoint(str(bad)),
                     lambda: load_checkpoint(str(mism), net=Two()),
                     lambda: save_checkpoint(src, str(tmp_path / "no" / "x.ckpt")),
                     lambda: save_checkpoint([{"name": "__metadata__", "data": src.w}], str(good))):
            try:
                call()
            except (ValueError, RuntimeError, OSError):
                pass
            else:
                raise AssertionError("expected an error")

    cycle()
    gc.collect()
    tracemalloc.start()
    py0, sp0 = tracemalloc.get_traced_memory()[0], spore._C.cpu_live_bytes()
    for _ in range(60):
        cycle()
    gc.collect()
    py1, sp1 = tracemalloc.get_traced_memory()[0], spore._C.cpu_live_bytes()
    tracemalloc.stop()
    assert sp1 - sp0 == 0
    assert py1 - py0 < 64 * 1024
    _assert_same(_snapshot(dst), _snapshot(src))


# ---- resuming training --------------------------------------------------------------------------

def _batch(step):
    rng = np.random.RandomState(1000 + step)
    x = rng.randn(8, 4).astype(np.float32)
    y = rng.randn(8, 3).astype(np.float32)
    return Tensor(x), Tensor(y)


class MLP(nn.Cell):
    """Dense-ReLU-Dense from Parameters and ops, with momentum buffers as
    Parameters of the same cell: the whole training state in one Cell."""

    def __init__(self, seed):
        super().__init__()
        rng = np.random.RandomState(seed)
        self.w1 = Parameter(Tensor((rng.randn(4, 8) * 0.5).astype(np.float32)))
        self.b1 = Parameter(Tensor(np.zeros(8, np.float32)))
        self.w2 = Parameter(Tensor((rng.randn(8, 3) * 0.5).astype(np.float32)))
        self.b2 = Parameter(Tensor(np.zeros(3, np.float32)))
        for n in ("w1", "b1", "w2", "b2"):
            p = getattr(self, n)
            setattr(self, "moments_" + n, Parameter(Tensor(np.zeros(p.shape, np.float32)), requires_grad=False))
        self.global_step = Parameter(Tensor(np.array(0, np.int32)), requires_grad=False)


def _mlp_loss(w1, b1, w2, b2, x, y):
    h = ops.relu(ops.matmul(x, w1) + b1)
    d = ops.matmul(h, w2) + b2 - y
    return ops.mean(d * d)


def _mlp_step(net, step):
    x, y = _batch(step)
    loss, grads = spore.value_and_grad(_mlp_loss, grad_position=(0, 1, 2, 3))(net.w1, net.b1, net.w2, net.b2, x, y)
    for n, g in zip(("w1", "b1", "w2", "b2"), grads):
        p, v = getattr(net, n), getattr(net, "moments_" + n)
        new_v = v * 0.9 + g
        ops.assign(v, new_v)
        ops.assign(p, p - new_v * 0.05)
    ops.assign(net.global_step, net.global_step + 1)
    return loss.asnumpy().item()


def _resume_check(tmp_path, make, step_fn, n_steps):
    """Trains make(0) for 2N steps, saving after N; trains make(99) loaded
    from that checkpoint for N steps.  Losses and every parameter (the
    optimizer's state included) must be equal bit for bit."""
    run = make(0)
    first = [step_fn(run, s) for s in range(n_steps)]
    save_checkpoint(run, str(tmp_path / "resume.ckpt"), append_dict={"epoch_num": n_steps})
    rest = [step_fn(run, s) for s in range(n_steps, 2 * n_steps)]
    assert len(set(first + rest)) > 2 * n_steps - 2  # it trains: the losses move

    fresh = make(99)
    a, b = _snapshot(fresh), _snapshot(run)
    assert a.keys() == b.keys() and not all(np.array_equal(a[k][1], b[k][1]) for k in a)
    d = load_checkpoint(str(tmp_path / "resume.ckpt"))
    start = int(d["epoch_num"].asnumpy())
    not_loaded, unused = load_param_into_net(fresh, d)
    assert not_loaded == [] and unused == ["epoch_num"]
    resumed = [step_fn(fresh, s) for s in range(start, 2 * n_steps)]
    assert resumed == rest
    _assert_same(_snapshot(fresh), _snapshot(run))


def test_resume_functional_training_exactly(tmp_path, mode):
    _resume_check(tmp_path, MLP, _mlp_step, 5)


def _train_cell(seed, opt_name):
    spore.set_seed(seed)
    net = nn.SequentialCell([nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3)])
    if opt_name == "Momentum":
        opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    else:
        opt = nn.Adam(net.trainable_params(), learning_rate=0.01)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    step.set_train()
    return step


def _cell_step(cell, s):
    x, y = _batch(s)
    return cell(x, y).asnumpy().item()


def test_wrapping_keeps_names_so_bare_and_wrapped_checkpoints_agree(tmp_path):
    """MindSpore: the training wrappers (auto_prefix=False) do not rename
    the network's Parameters, so a checkpoint of the TrainOneStepCell loads
    strictly into the bare network and the other way round."""
    spore.set_seed(3)
    net = nn.SequentialCell([nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3)])
    names = [p.name for p in net.get_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()),
                               nn.Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9))
    assert [p.name for p in net.get_parameters()] == names
    step(*_batch(0))
    save_checkpoint(step, str(tmp_path / "wrapped.ckpt"))
    bare = nn.SequentialCell([nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3)])
    d = load_checkpoint(str(tmp_path / "wrapped.ckpt"))
    not_loaded, unused = load_param_into_net(bare, d, strict_load=True)
    assert not_loaded == [] and "global_step" in unused and all(n not in unused for n in names)
    for p, q in zip(bare.get_parameters(), net.get_parameters()):
        assert np.array_equal(p.asnumpy(), q.asnumpy())


@pytest.mark.parametrize("opt_name", ["Momentum", "Adam"])
def test_resume_train_one_step_cell_exactly(tmp_path, mode, opt_name):
    """The issue's resume test: Dense-ReLU-Dense trained through
    nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt); the checkpoint of
    the TrainOneStepCell carries the optimizer's state."""
    _resume_check(tmp_path, lambda seed: _train_cell(seed, opt_name), _cell_step, 5)
