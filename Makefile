# The README's two commands: `make bench` and `make test`. Both install missing deps first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
IOL := $(BUILD_DIR)/src/iol/cli/iol

SANITIZE_DIR ?= build-debug
# Sanitizer reports fail loudly: distinct exit codes (never mistaken for iol's 1 and 2), UBSan
# stops at the first finding (the preset also compiles with -fno-sanitize-recover).
SANITIZER_ENV := ASAN_OPTIONS=exitcode=86:detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=exitcode=87:halt_on_error=1:print_stacktrace=1

.PHONY: all deps build test test-sanitize test-gpu bench clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@./scripts/deps.sh --test
	cd $(BUILD_DIR) && ctest -LE 'gpu|fuzz-cli' --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory test-sanitize

# The ASan/UBSan build (`debug` preset): only the targets its suites need (no micro-benchmarks),
# then the unit, integration and CLI-fuzzer suites (the CLI fuzzer runs here only: under the
# sanitizers it finds more, and its fixed 120 s budget twice cost CI two minutes). Part of `make test` (so of CI); SANITIZE=0 skips it.
# The reference models' held-out bits-per-byte test and the speculative tests on the reference
# pair (minutes of fp32 forwards under ASan: 614 s for the three speculative ones, 8 s in release;
# the same engine and verifier code runs under ASan in SpeculativeEngine.* on the mock backend), and
# the headless-Chromium check of the HTML report (its ablation run took over 5 min under ASan, the
# last test left running; Ablation.* runs the same ablation under ASan) run in the release suite only.
test-sanitize: deps
ifneq ($(SANITIZE),0)
	@cmake --preset debug >/dev/null
	@cmake --build $(SANITIZE_DIR) -j $(JOBS) --target iol iol_unit_tests iol_integration_tests
	cd $(SANITIZE_DIR) && $(SANITIZER_ENV) ctest -L 'unit|integration|fuzz-cli' -LE gpu -E 'HeldOutBitsPerByte|SpeculativeReference|report\.html_chromium' --output-on-failure -j $(JOBS)
endif

# GPU tests run on a machine with an NVIDIA GPU (label gpu).
test-gpu: build
	cd $(BUILD_DIR) && ctest -L gpu --output-on-failure

# Default job: generate from the embedded default model (tiny, seeded) on the CPU backend.
bench: build
	@./scripts/default_bench.sh $(IOL)

clean:
	rm -rf $(BUILD_DIR)
