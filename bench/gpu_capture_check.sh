#!/usr/bin/env bash
# gpu_capture_check.sh -- whole-graph CUDA capture, checked and timed in one
# run on a GPU machine (the device tool's: one command, a fresh box).
#
#   bench/gpu_capture_check.sh [OUTDIR]
#
# 1. finds cuDNN beside PyTorch when the toolkit has none (as gpu_check.sh);
# 2. builds Spore with the CUDA backend (Release, warnings as errors; only
#    the targets needed here), unless $BUILD already holds a build;
# 3. runs the capture tests: test_graph_cuda (a lowered MLP training step
#    with in-place SGD replayed as one CUDA graph: bit-identical to plain
#    runs over changing inputs and weights, the capture counted, a label and
#    a gather index out of range reported from inside a replay with the
#    plain run's message and nothing written back, fallbacks for strided and
#    aliased parameters, a random draw never recorded, no device memory
#    leaked) and test_lower_cuda (the plain executor on the GPU, which now
#    records on its second run);
# 4. runs bench/peer_gpu_step.py: the LeNet-5 training step at batch 64,
#    Spore plain / one CUDA graph / one graph with async errors beside
#    PyTorch eager and PyTorch's whole-step CUDA graph (PEER_COMPILE=1 adds
#    torch.compile reduce-overhead, which compiles for a minute or more).
# Logs go to OUTDIR (default $OUT, else ./gpu_capture_out); a summary ends
# the output; the exit status is nonzero when a build, test or bench failed.
set -u
OUTDIR=${1:-${OUT:-./gpu_capture_out}}
mkdir -p "$OUTDIR"
PY=${PY:-python3}
JOBS=${JOBS:-$(nproc)}
BUILD=${BUILD:-build-gpu}
export PYTHONUNBUFFERED=1
summary=()
fail=0
step() { echo; echo "==== $* ($(date +%T))"; }
note() { summary+=("$1"); }

step "machine"
nvidia-smi -L 2>&1 | head -4
nvcc --version 2>&1 | tail -1
$PY -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1 | tail -1

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
  cmake --build "$BUILD" -j"$JOBS" --target spore spore_cuda test_graph_cuda test_lower_cuda bench_gpu_step; } \
  >"$OUTDIR/build.log" 2>&1 || { fail=1; tail -40 "$OUTDIR/build.log"; }
echo "build: $(( $(date +%s) - t0 )) s"
if [ $fail = 0 ]; then note "build: ok"; else note "build: FAILED (see $OUTDIR/build.log)"; fi

if [ $fail = 0 ]; then
  for t in test_graph_cuda test_lower_cuda; do
    step "$t"
    timeout 300 "$BUILD/$t" tests/compiler/lower 2>&1 | tee "$OUTDIR/$t.log" | tail -25
    rc=${PIPESTATUS[0]}
    if grep -q "no GPU" "$OUTDIR/$t.log"; then
      note "$t: SKIPPED, no GPU ($(grep -m1 "no GPU" "$OUTDIR/$t.log"))"; fail=1
    elif [ "$rc" = 0 ]; then note "$t: ok ($(tail -1 "$OUTDIR/$t.log"))"
    else note "$t: FAILED rc=$rc (see $OUTDIR/$t.log)"; fail=1; fi
  done

  step "LeNet-5 step: Spore plain / CUDA graph beside PyTorch"
  extra=()
  [ "${PEER_COMPILE:-0}" = 1 ] && extra+=(--compile)
  timeout ${STEP_TIMEOUT:-420} $PY bench/peer_gpu_step.py "$BUILD" "${extra[@]}" 2>&1 | tee "$OUTDIR/gpu_step.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then note "bench gpu_step: ok"; else note "bench gpu_step: FAILED rc=$rc"; fail=1; fi
  grep -E '^\| |^Spore:|^LeNet|^gpu_step' "$OUTDIR/gpu_step.log" > "$OUTDIR/gpu_step_table.log" || true
fi

step "summary"
for s in "${summary[@]}"; do echo "  $s"; done
[ -f "$OUTDIR/gpu_step_table.log" ] && sed 's/^/  /' "$OUTDIR/gpu_step_table.log"
echo "==== $([ $fail = 0 ] && echo OK || echo FAILED)"
exit $fail
