#!/usr/bin/python3
"""conv_peer.py -- Spore's CPU conv2d and its two backprops against PyTorch.

Runs the bench_conv binary (Spore's times; path as the first argument, else
the newest build*/bench_conv under the repository) and PyTorch on the same
shapes, with Spore's thread count equal to torch.set_num_threads, for each
thread count asked (default 1 and 2), and prints one table per thread count:

    shape        op      spore ms   torch ms   spore/torch

A ratio below 1 means Spore is faster.  Both sides report the best of several
runs after a warm-up.  PyTorch runs forward through F.conv2d and the two
backprops through aten.convolution_backward (what autograd calls), float32.

    /usr/bin/python3 bench/conv_peer.py [bench_conv] [--threads 1,2] [--quick]
        [--batch-resnet 8] [--clock wall|cpu]

--clock cpu times both sides with the process CPU clock: on a machine busy
with other work it gives, for one thread, the time on an idle core (with
more threads it sums them, which is no speed).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def find_binary(arg):
    if arg:
        return arg
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = glob.glob(os.path.join(root, "build*", "bench_conv"))
    if not found:
        sys.exit("conv_peer.py: no build*/bench_conv; build it or pass its path")
    return max(found, key=os.path.getmtime)


def run_spore(binary, threads, quick, nres, clock):
    cmd = [binary, "--threads", str(threads), "--batch-resnet", str(nres), "--clock", clock]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows, header = [], ""
    for line in out.splitlines():
        if line.startswith("#"):
            header = line[1:].strip()
        elif line.startswith("conv "):
            rows.append(dict(re.findall(r"(\w+)=(\S+)", line)))
    return header, rows


CLOCK = time.perf_counter


def best_ms(fn, budget):
    fn()  # warm-up
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or (spent < budget and runs < 50):
        t0 = CLOCK()
        fn()
        dt = CLOCK() - t0
        best, spent, runs = min(best, dt), spent + dt, runs + 1
    return best * 1e3


def run_torch(row, budget):
    N, C, H, W, O, k, s, p = (int(row[key]) for key in "N C H W O k s p".split())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, C, H, W, generator=g) * 2 - 1
    w = torch.rand(O, C, k, k, generator=g) * 2 - 1
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    dy = torch.rand(N, O, Ho, Wo, generator=g) * 2 - 1
    conv_bwd = torch.ops.aten.convolution_backward

    def bwd(mask):
        return lambda: conv_bwd(dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)

    with torch.no_grad():
        return (best_ms(lambda: F.conv2d(x, w, None, s, p), budget),
                best_ms(bwd([True, False, False]), budget),
                best_ms(bwd([False, True, False]), budget))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch-resnet", type=int, default=8)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    binary = find_binary(args.binary)
    budget = 0.05 if args.quick else 0.2
    print(f"# torch {torch.__version__}, mkldnn={torch.backends.mkldnn.is_available()}, "
          f"binary {binary}")
    for t in [int(v) for v in args.threads.split(",")]:
        torch.set_num_threads(t)
        header, rows = run_spore(binary, t, args.quick, args.batch_resnet, args.clock)
        print(f"\n## {t} thread(s): {header}; torch threads={torch.get_num_threads()}")
        print(f"{'shape':<12} {'N':>3} {'CxHxW -> O, k/s/p':<24} {'op':<8} "
              f"{'spore ms':>9} {'torch ms':>9} {'ratio':>6}")
        for row in rows:
            tt = run_torch(row, budget)
            desc = f"{row['C']}x{row['H']}x{row['W']} -> {row['O']}, {row['k']}/{row['s']}/{row['p']}"
            for op, key, tv in zip(("fwd", "bwd_in", "bwd_w"),
                                   ("fwd_ms", "bwd_in_ms", "bwd_w_ms"), tt):
                sv = float(row[key])
                print(f"{row['name']:<12} {row['N']:>3} {desc:<24} {op:<8} "
                      f"{sv:9.3f} {tv:9.3f} {sv / tv:6.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
