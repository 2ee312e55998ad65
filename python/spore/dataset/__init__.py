"""spore.dataset: MindSpore's data pipeline API (mindspore.dataset) over
Spore's C pipeline.

    import spore.dataset as ds
    from spore.dataset import vision, transforms
    data = ds.MnistDataset("/usr/share/datasets/fashion-mnist", usage="train")
    data = data.map([vision.Rescale(1 / 255, 0), vision.Normalize([0.1307], [0.3081]),
                     vision.HWC2CHW()], input_columns="image")
    data = data.map(transforms.TypeCast(spore.int32), input_columns="label")
    data = data.batch(32, drop_remainder=True)
    for image, label in data.create_tuple_iterator(): ...

Files are read and decoded in C, transforms run in C worker threads, rows
are batched in C and handed out as spore.Tensors without a copy.

Differences from MindSpore (what Spore's C pipeline allows):
  - label columns of MnistDataset and Cifar10Dataset are uint8 (MindSpore:
    uint32; Spore has no uint32).  Images match: uint8 (28, 28, 1) HWC and
    (32, 32, 3) HWC.
  - map's operations must give as many columns as they take; column_order
    and batch's per_batch_map are not supported; sampler objects are not
    supported (shuffle, num_samples, num_shards, shard_id are).
  - Python callables in map run in threads (python_multiprocessing is
    ignored) and take numpy arrays, as in MindSpore.
  - one pool size for every map of a pipeline: the largest
    num_parallel_workers among them.
"""
from spore.dataset import config
from spore.dataset.datasets import (Dataset, MnistDataset, Cifar10Dataset, NumpySlicesDataset,
                                    GeneratorDataset)
from spore.dataset.iterators import TupleIterator, DictIterator
from spore.dataset import transforms, vision

__all__ = ["config", "Dataset", "MnistDataset", "Cifar10Dataset", "NumpySlicesDataset", "GeneratorDataset",
           "TupleIterator", "DictIterator", "transforms", "vision"]
