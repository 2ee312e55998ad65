"""The vision transforms of src/data against numpy references (and Resize
against PyTorch's bilinear interpolation when torch is installed), and the
MNIST loader against numpy's own decoding of the gzip files."""
import gzip
import os

import numpy as np
import pytest

import spore_ct as ct
import spore_data_ct as dc

RNG = np.random.default_rng(1234)


def img(h, w, c=3, dtype=np.uint8):
    if np.issubdtype(dtype, np.integer):
        x = RNG.integers(0, 256, size=(h, w, c) if c else (h, w))
    else:
        x = RNG.standard_normal(size=(h, w, c) if c else (h, w)) * 50
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.int32])
def test_rescale(dtype):
    x = img(5, 7, 3, dtype)
    got = dc.rescale(1 / 255, -0.5)(x)
    ref = x.astype(np.float32) * np.float32(1 / 255) + np.float32(-0.5)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape,mean,std", [((6, 4, 3), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                                            ((6, 4, 1), [0.1307], [0.3081]),
                                            ((6, 4), [3.0], [2.0])])
def test_normalize(shape, mean, std):
    x = RNG.random(shape).astype(np.float32)
    got = dc.normalize(mean, std)(x)
    ref = (x - np.array(mean, np.float32)) / np.array(std, np.float32) if len(shape) == 3 else \
        (x - np.float32(mean[0])) / np.float32(std[0])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_normalize_errors():
    with pytest.raises(ct.SporeError, match="Normalize: image of shape \\(2, 2, 3\\) has 3 channels, mean and std have 1"):
        dc.normalize([0.5], [0.5])(img(2, 2, 3))
    with pytest.raises(ct.SporeError, match="std\\[1\\] = 0"):
        dc.normalize([0.5, 0.5], [1.0, 0.0])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_hwc2chw(dtype):
    x = img(4, 5, 3, dtype)
    got = dc.hwc2chw()(x)
    np.testing.assert_array_equal(got, np.transpose(x, (2, 0, 1)))
    y = img(4, 5, 0, dtype)
    np.testing.assert_array_equal(dc.hwc2chw()(y), y)


def crop_ref(x, h, w, pad, fill, seed, counter):
    left, top, right, bottom = pad
    widths = [(top, bottom), (left, right)] + ([(0, 0)] if x.ndim == 3 else [])
    p = np.pad(x, widths, constant_values=fill)
    r = dc.philox(seed, counter)
    y0 = (r[0] * (p.shape[0] - h + 1)) >> 32
    x0 = (r[1] * (p.shape[1] - w + 1)) >> 32
    return p[y0:y0 + h, x0:x0 + w]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int64])
def test_random_crop(dtype):
    x = img(10, 12, 3, dtype)
    t = dc.random_crop(8, 9, padding=(2, 1, 3, 4), fill=7)
    corners = set()
    for counter in range(40):
        got = t(x, seed=99, counter=counter)
        ref = crop_ref(x, 8, 9, (2, 1, 3, 4), 7, 99, counter)
        np.testing.assert_array_equal(got, ref)
        corners.add(tuple(got[0, 0].tolist()))
    assert len(corners) > 5  # the window really moves
    # same key, same crop; HW images too
    np.testing.assert_array_equal(t(x, 5, 6), t(x, 5, 6))
    g = img(10, 12, 0, dtype)
    np.testing.assert_array_equal(t(g, 5, 6), crop_ref(g, 8, 9, (2, 1, 3, 4), 7, 5, 6))


def test_random_crop_pad_if_needed_and_errors():
    x = img(3, 4, 1)
    got = dc.random_crop(6, 6, pad_if_needed=True)(x, 1, 2)
    assert got.shape == (6, 6, 1)
    ref = crop_ref(x, 6, 6, (1, 1, 1, 2), 0, 1, 2)  # padded evenly: left 1 right 1, top 1 bottom 2
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(ct.SporeError, match="RandomCrop: crop size \\(6, 6\\) is larger than the padded image \\(3, 4\\)"):
        dc.random_crop(6, 6)(x)


def test_random_horizontal_flip():
    x = img(4, 6, 3, np.float32)
    flips = 0
    for counter in range(200):
        got = dc.random_horizontal_flip(0.3)(x, 7, counter)
        flip = dc.philox(7, counter)[2] / 2**32 < 0.3
        np.testing.assert_array_equal(got, x[:, ::-1] if flip else x)
        flips += flip
    assert 40 <= flips <= 80
    np.testing.assert_array_equal(dc.random_horizontal_flip(1.0)(x), x[:, ::-1])
    np.testing.assert_array_equal(dc.random_horizontal_flip(0.0)(x), x)


def resize_ref(x, oh, ow):
    """Bilinear with half-pixel centres, edges clamped (OpenCV INTER_LINEAR)."""
    H, W = x.shape[:2]
    xf = x.astype(np.float64)

    def coords(o, n, m):
        s = (np.arange(o) + 0.5) * n / o - 0.5
        s = np.maximum(s, 0)
        i0 = np.floor(s).astype(int)
        i0 = np.minimum(i0, n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        f = np.where(i0 >= n - 1, 0.0, s - i0)
        return i0, i1, f

    y0, y1, fy = coords(oh, H, oh)
    x0, x1, fx = coords(ow, W, ow)
    fx = fx[None, :, None] if x.ndim == 3 else fx[None, :]
    fy = fy[:, None, None] if x.ndim == 3 else fy[:, None]
    top = xf[y0][:, x0] + (xf[y0][:, x1] - xf[y0][:, x0]) * fx
    bot = xf[y1][:, x0] + (xf[y1][:, x1] - xf[y1][:, x0]) * fx
    out = top + (bot - top) * fy
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        return np.clip(np.floor(out + 0.5), info.min, info.max).astype(x.dtype)
    return out.astype(x.dtype)


@pytest.mark.parametrize("src,dst", [((8, 8), (16, 12)), ((17, 9), (5, 4)), ((6, 10), (6, 10)),
                                     ((1, 5), (3, 3))])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_resize_bilinear(src, dst, dtype):
    x = img(*src, 3, dtype)
    got = dc.resize(*dst)(x)
    ref = resize_ref(x, *dst)
    assert got.shape == dst + (3,) and got.dtype == x.dtype
    if dtype == np.uint8:
        assert np.max(np.abs(got.astype(int) - ref.astype(int))) <= 1
        assert np.mean(got == ref) > 0.99
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("src,dst", [((8, 8), (16, 12)), ((17, 9), (5, 4)), ((32, 32), (24, 40))])
def test_resize_matches_torch(src, dst):
    torch = pytest.importorskip("torch")
    x = img(*src, 3, np.float32)
    got = dc.resize(*dst)(x)
    t = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (2, 0, 1))))[None]
    ref = torch.nn.functional.interpolate(t, size=dst, mode="bilinear", align_corners=False)
    ref = np.transpose(ref[0].numpy(), (1, 2, 0))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_resize_shorter_side_and_nearest():
    x = img(20, 40, 3)
    assert dc.resize(10)(x).shape == (10, 20, 3)
    assert dc.resize(10)(img(40, 20, 3)).shape == (20, 10, 3)
    y = img(4, 6, 2, np.float32)
    got = dc.resize(8, 9, nearest=True)(y)
    ri = np.minimum(np.floor(np.arange(8) * 4 / 8).astype(int), 3)
    ci = np.minimum(np.floor(np.arange(9) * 6 / 9).astype(int), 5)
    np.testing.assert_array_equal(got, y[ri][:, ci])


def test_type_cast():
    x = img(3, 3, 2)
    got = dc.type_cast("float32")(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float32))
    f = np.array([[1.7, -2.2], [250.9, 3.0]], np.float32)
    np.testing.assert_array_equal(dc.type_cast("int32")(f), f.astype(np.int32))


def test_wrong_rank():
    with pytest.raises(ct.SporeError, match="HWC2CHW: expects an HW or HWC image, got shape \\(2, 3, 4, 5\\)"):
        dc.hwc2chw()(np.zeros((2, 3, 4, 5), np.float32))


FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("usage,prefix,count", [("train", "train", 60000), ("test", "t10k", 10000)])
def test_mnist_matches_numpy(usage, prefix, count):
    assert os.path.isdir(FMNIST), "dataset-fashion-mnist is not installed (make deps installs it)"
    im, lb = ct.TP(), ct.TP()
    dc.check(ct.lib.sp_mnist_load(FMNIST.encode(), usage.encode(), ct.C.byref(im), ct.C.byref(lb)))
    images, labels = ct.T(im).numpy(), ct.T(lb).numpy()
    with gzip.open(f"{FMNIST}/{prefix}-images-idx3-ubyte.gz") as f:
        ref_i = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{FMNIST}/{prefix}-labels-idx1-ubyte.gz") as f:
        ref_l = np.frombuffer(f.read(), np.uint8, offset=8)
    assert images.shape == (count, 28, 28) and labels.shape == (count,)
    np.testing.assert_array_equal(images, ref_i)
    np.testing.assert_array_equal(labels, ref_l)


def test_idx_error_names_file(tmp_path):
    p = tmp_path / "broken-idx1-ubyte"
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    out = ct.TP()
    st = ct.lib.sp_idx_load(str(p).encode(), ct.C.byref(out))
    assert st != 0
    assert ct.last_error() == f"{p}: truncated IDX file: shape (5,) needs 5 bytes of data, the file has 2 after the header"
