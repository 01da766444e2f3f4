# gopherdiscovery — every entry point. `make demo` and `make test` are the two
# commands of the README; both work on a fresh Debian machine with Rust, a C
# compiler and Python 3: what else they need (cmake, Python tools) goes into the
# ignored folders .venv/ and target/.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# A cmake installed by scripts/venv.sh is found after any system one.
export PATH := $(PATH):$(CURDIR)/.venv/bin
PREFIX ?= /usr/local

.PHONY: all build venv lint test test-rust test-c test-python demo bench bench-quick install header clean

all: build

venv:
	@bash scripts/venv.sh

build: venv
	cargo build --release --locked

## The lint gates: formatting, clippy (core and Python crates), rustdoc warnings.
lint:
	cargo fmt --all -- --check
	cd python && cargo fmt -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cd python && cargo clippy --locked --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

## Every test: lints, Rust unit + integration, C/C++, Python, and a quick benchmark run.
test: venv lint
	cargo test --locked
	bash tests/downstream/run.sh
	bash tests/c/run.sh
	bash python/run-tests.sh
	bash tests/packaging/run.sh
	bash benches/run.sh quick

test-rust: venv
	cargo test --locked

test-c: venv
	bash tests/c/run.sh

test-python: venv
	bash python/run-tests.sh

## Two servers, three members answering both, a watcher merging both: a killed server
## moves nothing, a killed member leaves once, the restarted server moves nothing.
demo: build
	bash examples/demo.sh

bench: build
	bash benches/run.sh full

bench-quick: build
	bash benches/run.sh quick

## Regenerates include/gopherdiscovery.h with cbindgen.
header: venv
	bash scripts/header.sh

.PHONY: uninstall wheel sdist

## C/C++ library, headers, pkg-config, CMake package and the CLI into $(PREFIX).
install: build
	bash scripts/install.sh "$(PREFIX)"

## Removes exactly what `make install` put into $(PREFIX).
uninstall:
	bash scripts/uninstall.sh "$(PREFIX)"

## dist/gopherdiscovery-VERSION-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
wheel: venv
	bash scripts/wheel.sh

## dist/gopherdiscovery-VERSION.tar.gz (pip builds it with Rust and cmake).
sdist: venv
	bash scripts/sdist.sh

clean:
	cargo clean
	rm -rf .venv build python/target dist
