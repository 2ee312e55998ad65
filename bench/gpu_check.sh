#!/usr/bin/env bash
# gpu_check.sh -- the whole GPU check and timing in one run on a GPU machine
# (the device tool's machine: one command, a fresh box each time).
#
#   bench/gpu_check.sh [OUTDIR]
#
# 1. finds cuDNN (pip's nvidia/cudnn beside PyTorch when the toolkit has
#    none) and pytest (installs carried wheels from .whl/ when missing);
# 2. builds Spore with the CUDA backend from scratch, warnings as errors;
# 3. runs `spore run-check`, the C tests and the GPU parity tests (tests/py/test_ops_gpu.py: every primitive and dtype on
#    the GPU against the numpy references, exact CPU/GPU parity checks);
#    Then device placement (helper DEVICE): the program corpus with cuda:0
#    as the default device (tests/py/test_programs_gpu.py: `spore run
#    --device cuda`, VM and --compile) and the Python package with
#    set_context(device_target="GPU") (tests/py/package/test_gpu_context.py,
#    the extension built here for $PY, staged as tools/pydev.sh does);
# 4. runs the benchmarks beside PyTorch: bench/gpu_kernels.py (the fused
#    softmax/cross-entropy/norm kernels and transpose at RESULTS.md's
#    shapes; their fast-path tests, tests/py/test_cuda_nn_fast.py, run in
#    step 3), bench/bench_gpu_ops.py (this
#    backend's elementwise/reduce/shape/index kernels and copies) and
#    bench/bench_gpu.py (GEMM bf16/tf32, device copy bandwidth);
#    GPU_CHECK_BENCH=0 skips them (a re-check of tests only).
# Logs go to OUTDIR (default $OUT, else ./gpu_check_out); the exit status
# is nonzero when a build or test step failed.
set -u
OUTDIR=${1:-${OUT:-./gpu_check_out}}
mkdir -p "$OUTDIR"
PY=${PY:-python3}
JOBS=${JOBS:-$(nproc)}
BUILD=${BUILD:-build-gpu}
export PYTHONUNBUFFERED=1
fail=0
step() { echo; echo "==== $* ($(date +%T))"; }

step "machine"
nvidia-smi -L 2>&1 | head -4
nvcc --version 2>&1 | tail -1
$PY -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'

if ! $PY -c 'import pytest' 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
CUDNN_DIR=$($PY -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
if [ -n "$CUDNN_DIR" ]; then
  export CUDNN_ROOT=$CUDNN_DIR LD_LIBRARY_PATH=$CUDNN_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for d in $($PY -c 'import nvidia, os; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
  done
  export LD_LIBRARY_PATH
fi

step "build ($BUILD, -j$JOBS)"
t0=$(date +%s)
{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSPORE_WERROR=ON -DSPORE_CUDA=ON \
    ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT} >/dev/null &&
  cmake --build "$BUILD" -j"$JOBS"; } >"$OUTDIR/build.log" 2>&1 || { fail=1; tail -40 "$OUTDIR/build.log"; }
echo "build: $(( $(date +%s) - t0 )) s, $(grep -ci warning "$OUTDIR/build.log") warning lines"

if [ $fail = 0 ]; then
  step "run-check"
  "$BUILD/spore" run-check || fail=1
  step "C tests"
  (cd "$BUILD" && ctest -j"$JOBS" 2>&1 | tail -4) || fail=1
  step "GPU parity tests, one process per primitive"
  export SPORE_LIB=$PWD/$BUILD/libspore.so PY OUTDIR
  mkdir -p /tmp/gpu_ops_logs
  ops=$(cd tests/py && $PY -c 'import spore_ct as sp; print(" ".join(sp.op_names()))')
  printf '%s\n' $ops | xargs -P 8 -I{} sh -c \
    'SPORE_GPU_OPS={} $PY -m pytest -q -p no:cacheprovider tests/py/test_ops_gpu.py -k test_primitive_gpu \
       >/tmp/gpu_ops_logs/{}.log 2>&1; echo "{}: $?: $(tail -1 /tmp/gpu_ops_logs/{}.log)"' \
    | sort | tee "$OUTDIR/gpu_ops_summary.log" | grep -v ": 0: " || true
  echo "primitives passing on the GPU: $(grep -c ': 0: ' "$OUTDIR/gpu_ops_summary.log") of $(echo $ops | wc -w)"
  for f in /tmp/gpu_ops_logs/*.log; do
    grep -q " passed" "$f" && ! grep -q -E "failed|error" "$f" || { echo "#### $f"; cat "$f"; }
  done > "$OUTDIR/gpu_ops_failures.log"
  grep -q ': [1-9][0-9]*: ' "$OUTDIR/gpu_ops_summary.log" && fail=1
  step "GPU parity tests: exact CPU/GPU checks"
  $PY -m pytest -q -p no:cacheprovider tests/py/test_ops_gpu.py tests/py/test_cuda_fast_paths.py \
    tests/py/test_cuda_nn_fast.py -k "not test_primitive_gpu" 2>&1 | tee "$OUTDIR/test_ops_gpu.log" | tail -30
  [ "${PIPESTATUS[0]}" = 0 ] || fail=1
  step "device placement: the program corpus on the GPU (spore run --device cuda)"
  SPORE_BIN=$PWD/$BUILD/spore timeout 900 $PY -m pytest -q -p no:cacheprovider -rs tests/py/test_programs_gpu.py \
    2>&1 | tee "$OUTDIR/test_programs_gpu.log" | tail -25
  [ "${PIPESTATUS[0]}" = 0 ] && echo "corpus on the GPU: PASS" || { echo "corpus on the GPU: FAIL"; fail=1; }
  step "device placement: the Python package on the GPU (set_context(device_target='GPU'))"
  pystage=$PWD/$BUILD/pystage
  if { cmake -S . -B "$BUILD" -DSPORE_PYTHON=ON -DPython_EXECUTABLE="$(command -v $PY)" >/dev/null &&
       cmake --build "$BUILD" -j"$JOBS" --target spore_python; } >"$OUTDIR/package_build.log" 2>&1; then
    mkdir -p "$pystage/spore"
    for f in python/spore/*; do [ "$f" = python/spore/_C ] || ln -sfn "$(realpath "$f")" "$pystage/spore/"; done
    for f in "$BUILD"/_C*.so; do ln -sfn "$(realpath "$f")" "$pystage/spore/"; done
    PYTHONPATH=$pystage${PYTHONPATH:+:$PYTHONPATH} timeout 600 $PY -m pytest -q -p no:cacheprovider -rs \
      tests/py/package/test_gpu_context.py 2>&1 | tee "$OUTDIR/test_gpu_context.log" | tail -25
    [ "${PIPESTATUS[0]}" = 0 ] && echo "package on the GPU: PASS" || { echo "package on the GPU: FAIL"; fail=1; }
  else
    tail -20 "$OUTDIR/package_build.log"
    echo "package on the GPU: FAIL (the extension did not build; python3-dev missing?)"
    fail=1
  fi
  if [ "${GPU_CHECK_BENCH:-1}" = 0 ]; then
    step "benchmarks skipped (GPU_CHECK_BENCH=0)"
  else
  step "gpu_kernels (softmax, cross-entropy, layer/batch norm, transpose: Spore vs PyTorch)"
  timeout 240 $PY bench/gpu_kernels.py "$BUILD" --no-check 2>&1 | tee "$OUTDIR/gpu_kernels.log"
  step "bench_gpu_ops (Spore vs PyTorch)"
  timeout 120 $PY bench/bench_gpu_ops.py "$BUILD" 2>&1 | tee "$OUTDIR/bench_gpu_ops.log"
  if [ -f bench/bench_gpu.py ]; then
    step "bench_gpu (GEMM, copy)"
    timeout ${BENCH_GPU_TIMEOUT:-150} $PY bench/bench_gpu.py "$BUILD" 2>&1 | tee "$OUTDIR/bench_gpu.log"
  fi
  fi
fi
step "done: $([ $fail = 0 ] && echo OK || echo FAILED)"
exit $fail
