#!/bin/sh
# tools/pydev.sh BUILD_DIR -- a development copy of the Python package
# without `pip install`: builds the extension spore._C in BUILD_DIR and
# stages BUILD_DIR/pystage/spore (symlinks to python/spore/* plus _C), so
#   PYTHONPATH=$(tools/pydev.sh build-x) .venv/bin/python -m pytest tests/py/package
# runs the package from the working tree.  Re-run it after adding a
# top-level entry to python/spore or changing python/spore/_C/*.c.
set -e
B=${1:-build-pydev}
CUDA=${SPORE_CUDA:-OFF}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DSPORE_WERROR=ON -DSPORE_PYTHON=ON -DSPORE_CUDA="$CUDA" \
      -DPython_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build "$B" -j2 --target spore_python >&2
S="$B/pystage/spore"
mkdir -p "$S"
for f in python/spore/*; do
  case "$f" in python/spore/_C) continue ;; esac
  ln -sfn "$(realpath "$f")" "$S/"
done
for f in "$B"/_C*.so; do ln -sfn "$(realpath "$f")" "$S/"; done
realpath "$B/pystage"
