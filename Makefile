# Spore's two front doors.
#   make test  -- installs what the build and tests need (apt-get as root,
#                 only what is missing), builds with warnings as errors, runs
#                 the C tests (ctest) and the Python tests (pytest), then runs
#                 the whole suite once more under ASan+UBSan.
#   make demo  -- builds and runs `spore run-check`.
#   make bench -- the benchmarks in bench/, each beside its peer.
# All targets are idempotent.

BUILD    ?= build
ASAN     ?= build-asan
JOBS     ?= $(shell nproc)
PY       ?= /usr/bin/python3
APT_PKGS  = build-essential cmake python3 python3-numpy python3-pytest libopenblas-dev
BENCH_PKGS = python3-torch

.PHONY: test demo bench deps bench-deps build build-asan test-fast test-asan clean

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

test-fast: build
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
	  $(PY) -m pytest -q -p no:cacheprovider tests

demo: deps build
	$(BUILD)/spore run-check

bench: bench-deps build
	$(PY) bench/run_all.py $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN)
