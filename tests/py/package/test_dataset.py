"""spore.dataset: MnistDataset against a numpy reading of the same IDX files,
pipelines (map, shuffle, batch, repeat), Python sources and Python maps in
worker threads, determinism under a seed, error messages, and clean
shutdown of partially consumed iterators."""
import gc
import gzip
import os
import shutil
import struct

import numpy as np
import pytest

import spore
from spore import _C
import spore.dataset as ds
from spore.dataset import vision, transforms

FMNIST = "/usr/share/datasets/fashion-mnist"
need_fmnist = pytest.mark.skipif(not os.path.isdir(FMNIST), reason="no Fashion-MNIST at " + FMNIST)


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def fm():
    return {u: (read_idx(f"{FMNIST}/{p}-images-idx3-ubyte.gz"), read_idx(f"{FMNIST}/{p}-labels-idx1-ubyte.gz"))
            for u, p in (("train", "train"), ("test", "t10k"))}


@pytest.fixture(autouse=True)
def _seeded():
    saved = ds.config._seed
    yield
    ds.config._seed = saved


def labels_of(d, **kw):
    return np.concatenate([np.atleast_1d(r[-1]) for r in d.create_tuple_iterator(output_numpy=True, num_epochs=1, **kw)])


def num_threads():
    return len(os.listdir("/proc/self/task"))


# ---- MNIST --------------------------------------------------------------------------


@need_fmnist
def test_mnist_sizes_dtypes_and_values(fm):
    train = ds.MnistDataset(FMNIST, usage="train", shuffle=False)
    test = ds.MnistDataset(FMNIST, "test", shuffle=False)
    assert train.get_dataset_size() == 60000 and test.get_dataset_size() == 10000
    assert ds.MnistDataset(FMNIST).get_dataset_size() == 70000  # usage=None: all
    assert train.get_col_names() == ["image", "label"]
    assert train.output_shapes() == [[28, 28, 1], []]
    assert train.output_types() == [np.uint8, np.uint8]
    img, lab = next(train.create_tuple_iterator())
    assert isinstance(img, spore.Tensor) and img.shape == (28, 28, 1) and img.dtype == spore.uint8
    np.testing.assert_array_equal(img.asnumpy()[:, :, 0], fm["train"][0][0])
    assert int(lab) == fm["train"][1][0]
    # first batch, and the last rows of the test set
    b_img, b_lab = next(train.batch(64).create_tuple_iterator(output_numpy=True))
    np.testing.assert_array_equal(b_img[..., 0], fm["train"][0][:64])
    np.testing.assert_array_equal(b_lab, fm["train"][1][:64])
    rows = list(test.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert len(rows) == 10000
    np.testing.assert_array_equal(rows[-1][0][..., 0], fm["test"][0][-1])
    np.testing.assert_array_equal(np.array([r[1] for r in rows]), fm["test"][1])


@need_fmnist
def test_mnist_all_is_train_then_test(fm):
    lab = labels_of(ds.MnistDataset(FMNIST, usage="all", shuffle=False).batch(1000))
    np.testing.assert_array_equal(lab, np.concatenate([fm["train"][1], fm["test"][1]]))


@need_fmnist
def test_mnist_batch_counts_drop_remainder():
    test = ds.MnistDataset(FMNIST, usage="test", shuffle=False)
    for drop, want in ((True, 10000 // 7), (False, 10000 // 7 + 1)):
        b = test.batch(7, drop_remainder=drop)
        assert b.get_dataset_size() == want
        shapes = [r[0].shape[0] for r in b.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        assert len(shapes) == want
        assert shapes[-1] == (7 if drop else 10000 % 7) and sum(shapes) == (want * 7 if drop else 10000)
    assert ds.MnistDataset(FMNIST, "train").batch(32, True).get_dataset_size() == 1875


@need_fmnist
def test_mnist_quickstart_pipeline_values(fm):
    mean, std = 0.2860, 0.3530
    d = ds.MnistDataset(FMNIST, usage="test", shuffle=False)
    d = d.map([vision.Rescale(1.0 / 255.0, 0), vision.Normalize([mean], [std]), vision.HWC2CHW()],
              input_columns="image", num_parallel_workers=3)
    d = d.map(transforms.TypeCast(spore.int32), input_columns="label")
    d = d.batch(32, drop_remainder=True)
    assert d.get_dataset_size() == 312
    seen = 0
    for k, (img, lab) in enumerate(d.create_tuple_iterator(num_epochs=1)):
        assert img.shape == (32, 1, 28, 28) and img.dtype == spore.float32 and lab.dtype == spore.int32
        if k in (0, 311):
            x = fm["test"][0][32 * k:32 * k + 32].astype(np.float32)
            want = ((x * np.float32(1 / 255)) - np.float32(mean)) / np.float32(std)
            np.testing.assert_allclose(img.asnumpy()[:, 0], want, rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(lab.asnumpy(), fm["test"][1][32 * k:32 * k + 32])
        seen += 1
    assert seen == 312


@need_fmnist
def test_mnist_shuffle_is_seeded_permutation_per_epoch(fm):
    ds.config.set_seed(1234)
    a = ds.MnistDataset(FMNIST, usage="test").batch(500)  # shuffle=None: shuffled
    ds.config.set_seed(1234)
    b = ds.MnistDataset(FMNIST, usage="test").batch(500)
    ds.config.set_seed(99)
    c = ds.MnistDataset(FMNIST, usage="test").batch(500)
    it = a.create_tuple_iterator(num_epochs=2, output_numpy=True)
    ep0 = np.concatenate([r[1] for r in it])
    ep1 = np.concatenate([r[1] for r in it])
    assert list(it) == []  # two epochs only
    assert np.array_equal(ep0, labels_of(b))  # same seed, same order
    assert not np.array_equal(ep0, ep1)  # a new order every epoch
    assert not np.array_equal(ep0, labels_of(c))
    assert not np.array_equal(ep0, fm["test"][1])
    for e in (ep0, ep1):  # every row exactly once
        np.testing.assert_array_equal(np.bincount(e, minlength=10), np.bincount(fm["test"][1], minlength=10))
    # shuffled images stay paired with their labels
    ds.config.set_seed(5)
    img, lab = next(ds.MnistDataset(FMNIST, usage="test").batch(50).create_tuple_iterator(output_numpy=True))
    for i in range(50):
        j = np.nonzero((fm["test"][0] == img[i, :, :, 0]).all(axis=(1, 2)))[0]
        assert len(j) >= 1 and fm["test"][1][j[0]] == lab[i]


@need_fmnist
def test_mnist_num_samples_and_shards(fm):
    d = ds.MnistDataset(FMNIST, usage="test", shuffle=False, num_samples=100)
    assert d.get_dataset_size() == 100
    np.testing.assert_array_equal(labels_of(d.batch(30)), fm["test"][1][:100])
    parts = [labels_of(ds.MnistDataset(FMNIST, "test", shuffle=False, num_shards=3, shard_id=s).batch(999))
             for s in range(3)]
    assert [len(p) for p in parts] == [3334] * 3
    # DistributedSampler: row k*3 + s, wrapping around so every shard has ceil(10000 / 3)
    np.testing.assert_array_equal(parts[1], np.concatenate([fm["test"][1][1::3], fm["test"][1][:1]]))
    np.testing.assert_array_equal(parts[0], fm["test"][1][0::3])
    ds.config.set_seed(3)
    shuf = [ds.MnistDataset(FMNIST, "test", num_shards=2, shard_id=s, num_samples=5000) for s in range(2)]
    got = [labels_of(x.batch(1000)) for x in shuf]
    assert all(len(g) == 5000 for g in got)
    np.testing.assert_array_equal(np.bincount(np.concatenate(got), minlength=10),
                                  np.bincount(fm["test"][1], minlength=10))


# ---- errors ---------------------------------------------------------------------------


def test_missing_dir_and_bad_usage(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        ds.MnistDataset(str(tmp_path / "nowhere"))
    with pytest.raises(OSError, match=str(tmp_path)):
        ds.MnistDataset(str(tmp_path), usage="train")
    with pytest.raises(ValueError, match="usage"):
        ds.MnistDataset(str(tmp_path), usage="valid")
    with pytest.raises(ValueError, match="not a directory"):
        ds.Cifar10Dataset(str(tmp_path / "x"))


@need_fmnist
def test_damaged_files_name_the_file(tmp_path):
    for name in os.listdir(FMNIST):
        shutil.copy(os.path.join(FMNIST, name), tmp_path / name)
    # a truncated gzip stream
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = p.read_bytes()
    p.write_bytes(raw[:len(raw) // 2])
    with pytest.raises((RuntimeError, OSError, ValueError), match="t10k-images-idx3-ubyte.gz"):
        ds.MnistDataset(str(tmp_path), usage="test")
    # a raw file with a bad magic number (the raw file is found before .gz? remove the .gz)
    os.remove(p)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x07\x03" + b"\x00" * 64)
    with pytest.raises((RuntimeError, OSError, ValueError), match="t10k-images-idx3-ubyte"):
        ds.MnistDataset(str(tmp_path), usage="test")
    # labels that do not match the images
    os.remove(tmp_path / "t10k-images-idx3-ubyte")
    shutil.copy(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"), p)
    lab = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(lab, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 5) + bytes(5))
    with pytest.raises((RuntimeError, OSError, ValueError), match="t10k-labels-idx1-ubyte.gz"):
        ds.MnistDataset(str(tmp_path), usage="test")
    # the train files still load
    assert ds.MnistDataset(str(tmp_path), usage="train").get_dataset_size() == 60000


def test_cifar10_from_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    recs = {}
    for name, n in [(f"data_batch_{i}.bin", 3) for i in range(1, 6)] + [("test_batch.bin", 4)]:
        lab = rng.integers(0, 10, n).astype(np.uint8)
        chw = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
        (tmp_path / name).write_bytes(b"".join(bytes([lab[i]]) + chw[i].tobytes() for i in range(n)))
        recs[name] = (chw.transpose(0, 2, 3, 1), lab)
    test = ds.Cifar10Dataset(str(tmp_path), usage="test", shuffle=False)
    assert test.get_dataset_size() == 4 and test.output_shapes() == [[32, 32, 3], []]
    img, lab = next(test.batch(4).create_tuple_iterator(output_numpy=True))
    np.testing.assert_array_equal(img, recs["test_batch.bin"][0])
    np.testing.assert_array_equal(lab, recs["test_batch.bin"][1])
    assert ds.Cifar10Dataset(str(tmp_path), usage="train").get_dataset_size() == 15
    assert ds.Cifar10Dataset(str(tmp_path)).get_dataset_size() == 19
    all_lab = labels_of(ds.Cifar10Dataset(str(tmp_path), shuffle=False).batch(19))
    np.testing.assert_array_equal(all_lab, np.concatenate([recs[f"data_batch_{i}.bin"][1] for i in range(1, 6)]
                                                          + [recs["test_batch.bin"][1]]))
    (tmp_path / "test_batch.bin").write_bytes(b"\x01" * 3073 * 2 + b"\x00" * 10)
    with pytest.raises((RuntimeError, ValueError, OSError), match="test_batch.bin"):
        ds.Cifar10Dataset(str(tmp_path), usage="test")


# ---- NumpySlices and Generator sources -----------------------------------------------------


def test_numpy_slices_columns_and_values():
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.arange(6, dtype=np.int32) * 10
    d = ds.NumpySlicesDataset({"x": x, "y": y}, shuffle=False)
    assert d.get_col_names() == ["x", "y"] and d.get_dataset_size() == 6
    rows = list(d.create_dict_iterator(output_numpy=True, num_epochs=1))
    assert len(rows) == 6 and set(rows[0]) == {"x", "y"}
    np.testing.assert_array_equal(np.stack([r["x"] for r in rows]), x)
    np.testing.assert_array_equal(np.array([r["y"] for r in rows]), y)
    t = ds.NumpySlicesDataset((x, y), column_names=["a", "b"], shuffle=False).batch(4)
    bx, by = list(t.create_tuple_iterator(output_numpy=True, num_epochs=1))[1]
    np.testing.assert_array_equal(bx, x[4:]) and np.testing.assert_array_equal(by, y[4:])
    one = ds.NumpySlicesDataset([1, 2, 3], shuffle=False)
    assert one.get_col_names() == ["column_0"]
    assert [int(r[0]) for r in one] == [1, 2, 3]
    u16 = ds.NumpySlicesDataset(np.array([1, 65535], np.uint16), shuffle=False)
    assert [int(r[0]) for r in u16] == [1, 65535]
    with pytest.raises(ValueError, match="column names"):
        ds.NumpySlicesDataset((x, y), column_names=["a"])
    with pytest.raises(ValueError, match="rows"):
        ds.NumpySlicesDataset((x, y[:5]))


def test_numpy_slices_shuffle_seeded():
    x = np.arange(1000, dtype=np.int32)
    ds.config.set_seed(7)
    a = labels_of(ds.NumpySlicesDataset(x).batch(100))
    ds.config.set_seed(7)
    b = labels_of(ds.NumpySlicesDataset(x).batch(100))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x)
    np.testing.assert_array_equal(np.sort(a), x)


def gen_rows(n):
    def gen():
        for i in range(n):
            yield np.full((2, 3), i, np.float32), np.array(i, np.int64)
    return gen


class RandomAccess:
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return np.array([i, i * i], np.int32), np.float64(i) / 2

    def __len__(self):
        return self.n


def test_generator_function_iterable_and_random_access():
    d = ds.GeneratorDataset(gen_rows(10), ["data", "label"])
    assert d.get_col_names() == ["data", "label"] and d.get_dataset_size() == 10
    rows = list(d.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [int(r[1]) for r in rows] == list(range(10))
    assert rows[3][0].shape == (2, 3) and rows[3][0].dtype == np.float32 and (rows[3][0] == 3).all()
    # a callable source runs anew every epoch
    it = d.batch(4).create_tuple_iterator(num_epochs=3, output_numpy=True)
    for _ in range(3):
        assert [b[1].tolist() for b in it] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(it) == []
    lst = ds.GeneratorDataset([(np.array([k], np.int32),) for k in range(5)], "v", shuffle=False)
    assert [int(r[0][0]) for r in lst] == [0, 1, 2, 3, 4]
    ra = ds.GeneratorDataset(RandomAccess(7), ["a", "b"], shuffle=False)
    rows = list(ra.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [r[0].tolist() for r in rows] == [[i, i * i] for i in range(7)]
    assert rows[3][1].dtype == np.float64 and float(rows[3][1]) == 1.5
    ds.config.set_seed(11)
    sh = [int(r[0][0]) for r in ds.GeneratorDataset(RandomAccess(50), ["a", "b"], num_samples=20)]
    assert len(sh) == 20 and len(set(sh)) == 20 and sh != sorted(sh)
    it = iter(range(4))
    once = ds.GeneratorDataset(((np.int32(k),) for k in it), "k")
    assert [int(r[0]) for r in once] == [0, 1, 2, 3]
    typed = ds.GeneratorDataset(gen_rows(3), ["data", "label"], column_types=[spore.float64, spore.int32])
    assert [str(t) for t in typed.output_types()] == ["float64", "int32"]


def test_generator_errors_surface_with_their_message():
    def bad():
        yield (np.zeros(2, np.float32),)
        raise KeyError("broken source 42")
    d = ds.GeneratorDataset(bad, ["x"])
    it = d.create_tuple_iterator(num_epochs=1)
    next(it)
    with pytest.raises(RuntimeError, match="broken source 42"):
        next(it)
    wrong = ds.GeneratorDataset(lambda: iter([(1, 2, 3)]), ["a", "b"])
    with pytest.raises(RuntimeError, match="3 values for 2 column"):
        list(wrong)
    with pytest.raises(RuntimeError, match="IndexError"):
        class Short(RandomAccess):
            def __getitem__(self, i):
                raise IndexError("no row %d" % i)
        list(ds.GeneratorDataset(Short(3), ["a", "b"], shuffle=False))
    with pytest.raises(ValueError, match="column_names"):
        ds.GeneratorDataset(gen_rows(2))
    with pytest.raises(ValueError, match="random-access"):
        ds.GeneratorDataset(gen_rows(2), ["a", "b"], shuffle=True)
    ragged = ds.GeneratorDataset(lambda: iter([(np.zeros(2),), (np.zeros(3),)]), ["a"]).batch(2)
    with pytest.raises(ValueError, match="batch"):
        list(ragged)


# ---- operations -------------------------------------------------------------------------


def test_python_map_in_worker_threads_keeps_order():
    x = np.arange(2000, dtype=np.int64)
    d = ds.NumpySlicesDataset({"x": x, "y": -x}, shuffle=False)
    out = d.map(lambda a: a * 3 + 1, input_columns="x", num_parallel_workers=4)
    out = out.map(lambda a, b: (a + b, a - b), input_columns=["x", "y"], output_columns=["s", "d"],
                  num_parallel_workers=3)
    assert out.get_col_names() == ["s", "d"]
    s, dd = zip(*[(int(a), int(b)) for a, b in out.create_tuple_iterator(output_numpy=True, num_epochs=1)])
    np.testing.assert_array_equal(s, 3 * x + 1 - x)
    np.testing.assert_array_equal(dd, 3 * x + 1 + x)

    def boom(a):
        if a == 1500:
            raise ValueError("row 1500 is bad")
        return a
    it = d.map(boom, ["x"], num_parallel_workers=4).create_tuple_iterator(output_numpy=True, num_epochs=1)
    got = []
    with pytest.raises(RuntimeError, match="row 1500 is bad"):
        for r in it:
            got.append(int(r[0]))
    assert got == list(range(1500))  # every row before the error, in order


def test_map_mixed_c_and_python_ops_and_eager_transforms():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    d = ds.NumpySlicesDataset({"image": img[None].repeat(3, 0)}, shuffle=False)
    d = d.map([vision.Rescale(0.5, 1.0), lambda a: a * 2, vision.HWC2CHW()], "image", num_parallel_workers=2)
    out = next(d.create_tuple_iterator(output_numpy=True))[0]
    np.testing.assert_allclose(out, ((img.astype(np.float32) * 0.5 + 1) * 2).transpose(2, 0, 1))
    # eager: transforms called on arrays return numpy arrays
    np.testing.assert_allclose(vision.Rescale(1 / 255, -0.5)(img), img.astype(np.float32) / 255 - 0.5, rtol=1e-6)
    n = vision.Normalize([1, 2, 3], [2, 4, 8])(img.astype(np.float32))
    np.testing.assert_allclose(n, (img - np.array([1, 2, 3])) / np.array([2, 4, 8]), rtol=1e-6)
    assert vision.HWC2CHW()(img).shape == (3, 4, 6)
    assert vision.Resize((8, 12))(img).shape == (8, 12, 3)
    assert vision.Resize(8)(img).shape == (8, 12, 3)  # shorter side
    np.testing.assert_array_equal(vision.Resize((8, 12), vision.Inter.NEAREST)(img)[::2, ::2], img)
    assert vision.RandomCrop(3)(img).shape == (3, 3, 3)
    assert vision.RandomCrop((6, 8), padding=1)(img).shape == (6, 8, 3)
    flips = {vision.RandomHorizontalFlip(1.0)(img).tobytes(), img[:, ::-1].tobytes()}
    assert len(flips) == 1
    np.testing.assert_array_equal(vision.RandomHorizontalFlip(0.0)(img), img)
    assert transforms.TypeCast(spore.int32)(img).dtype == np.int32
    assert transforms.Compose([vision.Rescale(2, 0), vision.HWC2CHW()])(img).shape == (3, 4, 6)
    with pytest.raises(ValueError, match="std"):
        vision.Normalize([0], [0])
    with pytest.raises(ValueError, match="RandomHorizontalFlip"):
        vision.RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="input column"):
        ds.NumpySlicesDataset({"a": img}).map(vision.HWC2CHW(), "b")
    bad = ds.NumpySlicesDataset({"a": np.zeros((2, 2, 2, 2, 2), np.float32)}).map(vision.Resize(4), "a")
    with pytest.raises(ValueError, match="Resize"):
        list(bad)


def test_random_transforms_seeded_and_independent_of_workers():
    imgs = np.random.default_rng(1).integers(0, 255, (64, 10, 10, 3)).astype(np.uint8)

    def run(workers, seed=21):
        ds.config.set_seed(seed)
        d = ds.NumpySlicesDataset({"im": imgs}, shuffle=False)
        d = d.map([vision.RandomCrop(8, padding=2), vision.RandomHorizontalFlip()], "im",
                  num_parallel_workers=workers)
        it = d.batch(64).create_tuple_iterator(output_numpy=True, num_epochs=2)
        return next(it)[0], (list(it), next(it)[0])[1]
    a0, a1 = run(1)
    b0, b1 = run(4)
    np.testing.assert_array_equal(a0, b0)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0, a1)  # new draws in the second epoch
    assert not np.array_equal(a0, run(1, seed=22)[0])
    assert a0.shape == (64, 8, 8, 3)


def test_shuffle_batch_repeat():
    x = np.arange(100, dtype=np.int32)
    base = ds.NumpySlicesDataset(x, shuffle=False)
    ds.config.set_seed(5)
    s1 = labels_of(base.shuffle(16).batch(10))
    ds.config.set_seed(5)
    s2 = labels_of(base.shuffle(16).batch(10))
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(np.sort(s1), x)
    assert not np.array_equal(s1, x)
    r = base.repeat(3)
    assert r.get_dataset_size() == 300
    np.testing.assert_array_equal(labels_of(r.batch(50)), np.tile(x, 3))
    rb = base.batch(30).repeat(2)
    assert rb.get_dataset_size() == 8
    sizes = [b[0].shape[0] for b in rb.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert sizes == [30, 30, 30, 10] * 2
    forever = base.repeat()
    assert forever.get_dataset_size() == -1
    it = forever.batch(64).create_tuple_iterator(output_numpy=True)
    got = [next(it)[0] for _ in range(10)]
    np.testing.assert_array_equal(np.concatenate(got), np.tile(x, 7)[:640])
    it.stop()
    ren = base.rename("column_0", "v")
    assert ren.get_col_names() == ["v"] and list(next(ren.create_dict_iterator()).keys()) == ["v"]
    pick = ds.NumpySlicesDataset({"a": x, "b": -x}, shuffle=False).create_tuple_iterator(columns=["b"])
    assert int(next(pick)[0]) == 0 and int(next(pick)[0]) == -1
    with pytest.raises(ValueError):
        base.batch(0)
    with pytest.raises(ValueError):
        base.shuffle(1)
    with pytest.raises(ValueError):
        base.repeat(0)


class _Twice(spore.nn.Cell):
    def construct(self, x):
        return (x * 2.0).sum()


def test_batches_feed_a_cell(mode):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    d = ds.NumpySlicesDataset({"x": x}, shuffle=False).batch(3)
    net = _Twice()
    total = 0.0
    for (b,) in d:
        assert isinstance(b, spore.Tensor) and b.shape == (3, 2)
        total += float(net(b))
    assert total == float(x.sum() * 2)


# ---- shutdown ------------------------------------------------------------------------------


def test_partially_consumed_iterators_shut_down_without_leaks():
    x = np.random.default_rng(0).random((5000, 8, 8, 1)).astype(np.float32)
    d = ds.NumpySlicesDataset({"x": x, "y": np.arange(5000)}, shuffle=True)
    d = d.map([vision.Rescale(2.0, 0.0), vision.HWC2CHW()], "x", num_parallel_workers=4)
    d = d.map(lambda v: v + 1, "y", num_parallel_workers=2).shuffle(64).batch(16)
    for _ in range(3):  # warm up whatever Python caches
        it = d.create_tuple_iterator()
        next(it)
        del it
    gc.collect()
    threads0, bytes0 = num_threads(), _C.cpu_live_bytes()
    for k in range(40):
        it = d.create_tuple_iterator(output_numpy=bool(k % 2))
        for _ in range(k % 5):
            next(it)
        del it
    its = [iter(d) for _ in range(10)]
    for it in its:
        next(it)
    assert num_threads() > threads0
    del its
    it = d.create_dict_iterator()
    next(it)
    it.stop()
    assert list(it) == []
    gc.collect()
    assert num_threads() == threads0
    assert _C.cpu_live_bytes() == bytes0
