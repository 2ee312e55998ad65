"""Input pipeline throughput: MindSpore's quickstart MNIST pipeline in
spore.dataset beside the same work done by PyTorch's DataLoader and by
plain vectorized numpy.

usage: PYTHONPATH=$(tools/pydev.sh build-x) .venv/bin/python bench/bench_dataset.py [DIR]
       (DIR: an MNIST-format folder, default /usr/share/datasets/fashion-mnist;
        with DIR=synthetic, random IDX files are written to a temporary folder)

The pipeline: MnistDataset(train, 60,000 images, no shuffle) -> Rescale(1/255)
-> Normalize(mean, std) -> HWC2CHW -> batch(32, drop_remainder) -> one epoch
of create_tuple_iterator (spore.Tensors).  Figures are images per second,
the best of 3 epochs, for several map worker counts.  The peers do the same
arithmetic per image: PyTorch's DataLoader (batch_size 32, num_workers=0,
a per-sample Python transform on torch tensors, the usual torchvision-free
way) and numpy doing each batch in one vectorized expression (a lower
bound on the per-image cost Python can reach).  The IDX decoding happens
once at construction in all three and is not timed.
"""
import gzip
import os
import platform
import struct
import sys
import tempfile
import time

import numpy as np

import spore
import spore.dataset as ds
from spore.dataset import vision

MEAN, STD = 0.2860, 0.3530


def write_synthetic(d, n=60000):
    rng = np.random.default_rng(0)
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz"), "wb", compresslevel=1) as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + rng.integers(0, 256, n * 784, np.uint8).tobytes())
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + rng.integers(0, 10, n, np.uint8).tobytes())


def best_of(fn, runs=3):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        rate = n / (time.perf_counter() - t0)
        best = rate if best is None else max(best, rate)
    return best


def spore_epoch(data, workers):
    d = data.map([vision.Rescale(1.0 / 255.0, 0.0), vision.Normalize([MEAN], [STD]), vision.HWC2CHW()],
                 input_columns="image", num_parallel_workers=workers)
    d = d.batch(32, drop_remainder=True)

    def run():
        n = 0
        for img, _ in d.create_tuple_iterator(num_epochs=1):
            n += img.shape[0]
        return n
    return run


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    tmp = None
    if root == "synthetic" or not os.path.isdir(root):
        tmp = tempfile.TemporaryDirectory()
        write_synthetic(tmp.name)
        root = tmp.name
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; spore {spore.__version__}")
    data = ds.MnistDataset(root, usage="train", shuffle=False)
    rows = []
    for w in (1, 2, 4, 8):
        if w > 2 * (os.cpu_count() or 1):
            continue
        rows.append((f"spore.dataset, {w} map worker(s)", best_of(spore_epoch(data, w))))

    images = next(ds.MnistDataset(root, usage="train", shuffle=False).batch(60000)
                  .create_tuple_iterator(output_numpy=True))[0]
    labels = np.zeros(len(images), np.int64)

    def numpy_epoch():
        n = 0
        for i in range(0, len(images) - 31, 32):
            x = images[i:i + 32].astype(np.float32) * np.float32(1 / 255)
            x = ((x - np.float32(MEAN)) / np.float32(STD)).transpose(0, 3, 1, 2).copy()
            n += x.shape[0]
        return n
    rows.append(("numpy, one vectorized expression per batch", best_of(numpy_epoch)))

    try:
        import torch
        from torch.utils.data import DataLoader, Dataset
        torch.set_num_threads(1)

        class MNIST(Dataset):
            def __init__(self):
                self.x = torch.from_numpy(images)
                self.y = torch.from_numpy(labels)

            def __len__(self):
                return len(self.x)

            def __getitem__(self, i):
                x = self.x[i].to(torch.float32) * (1 / 255)
                return ((x - MEAN) / STD).permute(2, 0, 1).contiguous(), self.y[i]
        loader = DataLoader(MNIST(), batch_size=32, drop_last=True, num_workers=0)

        def torch_epoch():
            n = 0
            for x, _ in loader:
                n += x.shape[0]
            return n
        rows.append(("PyTorch DataLoader, num_workers=0, per-sample transform", best_of(torch_epoch, 2)))
    except ImportError:
        pass
    ref = rows[-1][1]
    print(f"{'pipeline':58s} {'images/s':>12s} {'vs last row':>12s}")
    for name, r in rows:
        print(f"{name:58s} {r:12,.0f} {r / ref:11.2f}x")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
