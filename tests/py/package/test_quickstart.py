"""examples/quickstart.py, short: 4,000 training images, one epoch.

The whole quickstart runs as a user would run it (a separate process, the
same interpreter and package): the pipeline, LeNet-5 in GRAPH_MODE, Model.fit
with LossMonitor/TimeMonitor/ModelCheckpoint, eval, save, load into a fresh
network, predict.  With 125 steps the loss must fall well below a guess's
ln(10) = 2.30 (it ends near 0.66) and the test accuracy must be far above
chance, 10% (it is 70%); `make demo` runs the full eight epochs and asks
for 89%.
"""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
DATA = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")),
                    reason="needs Debian's dataset-fashion-mnist")
def test_quickstart_short(tmp_path):
    ckpt = tmp_path / "ckpt"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py"), "--epochs", "1",
                        "--train-samples", "4000", "--test-samples", "2000", "--min-accuracy", "0.5",
                        "--ckpt-dir", str(ckpt)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, SPORE_PROGRESS="0"))
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "train: 125 batches, test: 63 batches of 32" in out
    losses = [float(v) for v in re.findall(r"^epoch: 1 step: 125, loss is ([0-9.]+)$", out, re.M)]
    assert len(losses) == 1 and losses[0] < 1.2, out
    metrics = re.findall(r"^Eval result: epoch 1, metrics: \{'accuracy': ([0-9.]+)\}$", out, re.M)
    acc = float(re.search(r"^test accuracy: ([0-9.]+)", out, re.M).group(1))
    assert len(metrics) == 1 and float(metrics[0]) == pytest.approx(acc, abs=1e-4)
    assert acc > 0.55, out
    assert re.search(r"^epoch time: [0-9.]+ ms, per step time: [0-9.]+ ms$", out, re.M)
    assert sorted(os.listdir(ckpt)) == ["lenet5-1_125.ckpt", "lenet5.ckpt"]
    pred = re.search(r"^predicted: (.*)$", out, re.M).group(1).split(", ")
    actual = re.search(r"^actual: +(.*)$", out, re.M).group(1).split(", ")
    assert len(pred) == 8 and len(actual) == 8
    assert "\033[" not in out        # no progress bar when stdout is not a terminal
    assert out.rstrip().endswith("OK: test accuracy %.4f >= 0.50" % acc)
