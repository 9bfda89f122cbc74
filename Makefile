# blindcast — the two commands a newcomer needs: `make demo` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 300

.PHONY: all build deps test-deps bench-deps demo test bench fuzz install deb clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

bench-deps:
	@scripts/install-deps.sh bench

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	./$(BUILD_DIR)/blindcast demo blindcast-demo

test: test-deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Each fuzz target for FUZZ_SECONDS (make test runs them for 20 s).
fuzz: test-deps build
	tests/fuzz/run_fuzz.sh $(CURDIR) $(BUILD_DIR) $(FUZZ_SECONDS) reply_parser
	tests/fuzz/run_fuzz.sh $(CURDIR) $(BUILD_DIR) $(FUZZ_SECONDS) guard
	tests/fuzz/run_fuzz.sh $(CURDIR) $(BUILD_DIR) $(FUZZ_SECONDS) csv_reader
	tests/fuzz/run_fuzz.sh $(CURDIR) $(BUILD_DIR) $(FUZZ_SECONDS) bounce

bench: bench-deps build
	bench/run.sh $(BUILD_DIR)

# The binary, its man page and bash/zsh completions under PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# A Debian package of the same: $(BUILD_DIR)/blindcast_<version>_<arch>.deb
deb: build
	cd $(BUILD_DIR) && cpack -G DEB

clean:
	rm -rf $(BUILD_DIR)
