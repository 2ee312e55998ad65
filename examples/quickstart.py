"""Quickstart: classify Fashion-MNIST with LeNet-5 on Spore.

This is MindSpore 2.x's quick start, step by step, on Spore: change
``import spore as ms`` to ``import mindspore as ms`` (and the ``spore``
imports below to ``mindspore``) and it runs on MindSpore unchanged.

    1. the data pipeline: MnistDataset -> map(Rescale, Normalize, HWC2CHW)
       -> map(TypeCast) -> batch (it runs in C worker threads);
    2. the network: LeNet-5, an nn.Cell;
    3. the loss and the optimizer;
    4. training with Model.fit (GRAPH_MODE: each step -- forward, gradient
       and the optimizer update -- is one graph compiled by Spore), which
       prints the loss and the test accuracy after every epoch, draws a
       progress bar on a terminal and writes a checkpoint every epoch;
    5. evaluation, saving and loading the weights, and predictions for a
       few test images.

Run it with ``make demo`` or
``python examples/quickstart.py [--epochs N] [--train-samples N]``.  It
exits with status 1 when the final test accuracy is below --min-accuracy
(0.89 by default): the demo is also a test.
"""
import argparse
import os
import sys
import time

import spore as ms
import spore.dataset as ds
from spore import nn
from spore.dataset import MnistDataset, vision, transforms
from spore.train import Model, LossMonitor, TimeMonitor, ModelCheckpoint, CheckpointConfig

DATA_DIR = "/usr/share/datasets/fashion-mnist"   # Debian's dataset-fashion-mnist
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# 1. The data pipeline ------------------------------------------------------------
def datapipe(path, usage, batch_size, num_samples=None, shuffle=False):
    """Batches of (image float32 N x 1 x 28 x 28, label int32 N)."""
    dataset = MnistDataset(path, usage=usage, num_samples=num_samples, shuffle=shuffle)
    image_transforms = [
        vision.Rescale(1.0 / 255.0, 0),
        vision.Normalize(mean=(0.2860,), std=(0.3530,)),   # Fashion-MNIST's pixel statistics
        vision.HWC2CHW(),
    ]
    label_transform = transforms.TypeCast(ms.int32)
    dataset = dataset.map(image_transforms, "image")
    dataset = dataset.map(label_transform, "label")
    dataset = dataset.batch(batch_size)
    return dataset


# 2. The network ------------------------------------------------------------------
class LeNet5(nn.Cell):
    """LeNet-5: two 5x5 convolutions with max pooling, three dense layers."""

    def __init__(self, num_class=10, num_channel=1):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channel, 6, 5, pad_mode="pad", padding=2, has_bias=True)
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid", has_bias=True)
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, num_class)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA_DIR, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3, help="the peak learning rate")
    ap.add_argument("--train-samples", type=int, default=None, help="train on N images only")
    ap.add_argument("--test-samples", type=int, default=None, help="test on N images only")
    ap.add_argument("--ckpt-dir", default="checkpoints", help="where the checkpoints go")
    ap.add_argument("--min-accuracy", type=float, default=0.89, help="exit 1 below this test accuracy")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(args.seed)             # the weights' initial values
    ds.config.set_seed(args.seed)      # the order the training images are shuffled in
    t_start = time.perf_counter()

    train_dataset = datapipe(args.data, "train", args.batch_size, args.train_samples, shuffle=True)
    test_dataset = datapipe(args.data, "test", args.batch_size, args.test_samples)
    print(f"train: {train_dataset.get_dataset_size()} batches, test: {test_dataset.get_dataset_size()} "
          f"batches of {args.batch_size}")

    network = LeNet5()
    print(network)

    # 3. Loss and optimizer: Adam, its learning rate decaying along a cosine ----------
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    steps = train_dataset.get_dataset_size()
    lr = nn.cosine_decay_lr(min_lr=args.lr / 100, max_lr=args.lr, total_step=args.epochs * steps,
                            step_per_epoch=steps, decay_epoch=args.epochs)
    optimizer = nn.Adam(network.trainable_params(), learning_rate=lr)

    # 4. Train: one line of loss and one of test accuracy per epoch -----------------
    model = Model(network, loss_fn, optimizer, metrics={"accuracy"})
    config = CheckpointConfig(save_checkpoint_steps=steps, keep_checkpoint_max=2)
    callbacks = [LossMonitor(per_print_times=steps), TimeMonitor(),
                 ModelCheckpoint(prefix="lenet5", directory=args.ckpt_dir, config=config)]
    model.fit(args.epochs, train_dataset, test_dataset, callbacks=callbacks)

    # 5. Evaluate -------------------------------------------------------------------
    accuracy = model.eval(test_dataset)["accuracy"]
    print(f"test accuracy: {accuracy:.4f} ({time.perf_counter() - t_start:.1f} s since the start)")

    # Save the weights, then load them into a fresh network ---------------------------
    os.makedirs(args.ckpt_dir, exist_ok=True)
    path = os.path.join(args.ckpt_dir, "lenet5.ckpt")
    ms.save_checkpoint(network, path)
    print(f"saved {path}")
    restored = LeNet5()
    param_dict = ms.load_checkpoint(path)
    param_not_load, _ = ms.load_param_into_net(restored, param_dict)
    if param_not_load:
        print(f"parameters not loaded: {param_not_load}")
        return 1

    # Predict a few test images with the restored network -----------------------------
    images, labels = next(test_dataset.create_tuple_iterator(num_epochs=1))
    predicted = Model(restored).predict(images).argmax(1).asnumpy()[:8]
    actual = labels.asnumpy()[:8]
    print("predicted:", ", ".join(CLASSES[i] for i in predicted))
    print("actual:   ", ", ".join(CLASSES[i] for i in actual))
    restored_accuracy = Model(restored, loss_fn, metrics={"accuracy"}).eval(test_dataset)["accuracy"]
    if abs(restored_accuracy - accuracy) > 1e-6:
        print(f"the restored network's accuracy {restored_accuracy:.4f} differs from {accuracy:.4f}")
        return 1

    if accuracy < args.min_accuracy:
        print(f"FAIL: test accuracy {accuracy:.4f} is below {args.min_accuracy:.2f}")
        return 1
    print(f"OK: test accuracy {accuracy:.4f} >= {args.min_accuracy:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
