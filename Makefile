# The README's two commands: `make run` and `make test`. Both install any
# missing Debian package first (scripts/bootstrap), then configure and build.
#
#   make run                 build and start NATS + one agent under ./var
#   make test                build and run every test suite (ctest)
#   make test SANITIZE=address   the same under ASan+UBSan (build-asan/)
#   make bench               print the benchmark figures
BUILD ?= build
SANITIZE ?=
JOBS ?= $(shell nproc)
ifeq ($(SANITIZE),address)
BUILD := build-asan
endif
ifeq ($(SANITIZE),thread)
BUILD := build-tsan
endif

.PHONY: all bootstrap configure build test run stop bench clean

all: build

bootstrap:
	@scripts/bootstrap

configure: bootstrap
	@echo "make: configuring and building in $(BUILD)/ (a first build takes a few minutes)"
	@cmake -S . -B $(BUILD) -DWARDEN_SANITIZE=$(SANITIZE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

test: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 300

run: build
	@BUILD=$(BUILD) deploy/local/run.sh

bench: build
	@BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-asan build-tsan
