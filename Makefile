# The README's two commands: `make bench` and `make test`. Both install missing deps first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
IOL := $(BUILD_DIR)/src/iol/cli/iol

.PHONY: all deps build test test-gpu bench clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@./scripts/deps.sh --test
	cd $(BUILD_DIR) && ctest -LE gpu --output-on-failure -j $(JOBS)

# GPU tests run on a machine with an NVIDIA GPU (label gpu).
test-gpu: build
	cd $(BUILD_DIR) && ctest -L gpu --output-on-failure

# Default job: generate from the embedded default model (tiny, seeded) on the CPU backend.
bench: build
	@./scripts/default_bench.sh $(IOL)

clean:
	rm -rf $(BUILD_DIR)
