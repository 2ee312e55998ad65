# Spore's two front doors.
#   make test  -- installs what the build and tests need (apt-get as root,
#                 only what is missing), builds with warnings as errors, runs
#                 the C tests (ctest) and the Python tests (pytest), then runs
#                 the whole suite once more under ASan+UBSan.
#   make demo  -- installs what it needs, builds, runs `spore run-check`, then
#                 examples/quickstart.py: LeNet-5 on Fashion-MNIST in GRAPH_MODE
#                 on the CPU; fails below 89% test accuracy.
#   make train-mlp -- trains examples/c/mlp.py on Fashion-MNIST from C (>= 85%).
#   make bench -- the benchmarks in bench/, each beside its peer.
# All targets are idempotent.

BUILD    ?= build
ASAN     ?= build-asan
JOBS     ?= $(shell nproc)
SYS_PY   ?= /usr/bin/python3
# The Python tests run in a venv that sees Debian's numpy/torch/pytest and
# holds the package itself (`pip install .`, CPU build: the GPU parity tests
# use libspore through SPORE_LIB) plus what the tests need from PyPI.
VENV     ?= .venv
PY       ?= $(VENV)/bin/python
PIP_PKGS  = scikit-build-core safetensors
APT_PKGS  = build-essential cmake python3 python3-dev python3-venv python3-numpy python3-pytest libopenblas-dev zlib1g-dev dataset-fashion-mnist
BENCH_PKGS = python3-torch

.PHONY: venv test demo train-mlp bench deps bench-deps build build-asan test-fast test-asan clean

test: deps build test-fast test-asan

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to apt-get install$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

bench-deps: deps
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DSPORE_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPORE_WERROR=ON -DSPORE_SANITIZE=ON -DSPORE_CUDA=OFF >/dev/null
	cmake --build $(ASAN) -j$(JOBS)

# The build folder of the package (build-pip/) persists, so a re-run
# rebuilds only what changed.
venv:
	@test -x $(PY) || $(SYS_PY) -m venv --system-site-packages $(VENV)
	@$(PY) -c "import scikit_build_core, safetensors" 2>/dev/null || $(PY) -m pip install -q $(PIP_PKGS)
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pip install -q --no-build-isolation --no-deps \
	  --config-settings=cmake.define.SPORE_CUDA=OFF .

test-fast: build venv
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	SPORE_LIB=$(BUILD)/libspore.so SPORE_BIN=$(BUILD)/spore $(PY) -m pytest -q tests

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.  The
# Python tests load the instrumented libspore.so into an uninstrumented
# interpreter, so the ASan runtime is preloaded and leak checking is left to
# the C tests (CPython itself keeps memory until exit).
test-asan: build-asan
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS)
	SPORE_LIB=$(ASAN)/libspore.so SPORE_BIN=$(ASAN)/spore LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(PY) -m pytest -q -p no:cacheprovider --ignore=tests/py/package tests

# The quickstart runs with the package installed into $(VENV) (the `venv`
# target); its checkpoints go to $(BUILD)/demo-checkpoints.
demo: deps build venv
	$(BUILD)/spore run-check
	$(PY) examples/quickstart.py --ckpt-dir $(BUILD)/demo-checkpoints --min-accuracy 0.89

# examples/c/train_mlp.c: a 784-256-10 MLP written in the source language,
# trained on Fashion-MNIST from C through the program API; fails under 85%.
train-mlp: deps build
	$(BUILD)/examples/train_mlp --min-accuracy 0.85

bench: bench-deps build venv
	$(PY) bench/run_all.py $(BUILD)
	$(PY) bench/bench_py_dispatch.py

clean:
	rm -rf $(BUILD) $(ASAN)
