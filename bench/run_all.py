"""Runs every benchmark in bench/ beside its peer and prints the tables.

usage: /usr/bin/python3 bench/run_all.py BUILD_DIR

Each benchmark prints its own ratio against the peer it runs in the same
process or script (OpenBLAS, PyTorch, memcpy bandwidth); this driver only
runs them in turn with 1 and with all threads, so one command refreshes
bench/RESULTS.md's figures.
"""
import os
import platform
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
here = os.path.dirname(os.path.abspath(__file__))
nproc = os.cpu_count() or 1


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


print(f"machine: {cpu_model()}, {nproc} cores, {platform.system()} {platform.release()}")
runs = []
for name in sorted(os.listdir(build)):
    # bench_conv is driven by conv_peer.py, which runs PyTorch beside it
    if name.startswith("bench_") and name != "bench_conv" and os.access(os.path.join(build, name), os.X_OK):
        runs.append([os.path.join(build, name)])
for threads in sorted({1, nproc}):
    env = dict(os.environ, SPORE_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    for cmd in runs:
        print(f"\n=== {os.path.basename(cmd[0])}  (threads={threads})", flush=True)
        subprocess.run(cmd, env=env, check=False)
print("\n=== conv_peer.py (Spore bench_conv beside PyTorch)", flush=True)
subprocess.run([sys.executable, os.path.join(here, "conv_peer.py"), os.path.join(build, "bench_conv"),
                "--threads", ",".join(str(t) for t in sorted({1, nproc}))], check=False)
print("\n=== peer_train_step.py (PyTorch's steps beside bench_train_step's)", flush=True)
subprocess.run([sys.executable, os.path.join(here, "peer_train_step.py"),
                "--threads", ",".join(str(t) for t in sorted({1, nproc}))], check=False)
