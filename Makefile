# Every target installs what it needs first: a fresh machine runs `make demo` or `make test` alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: all install lock azurite demo test unit lint typecheck bench e2e clean chart-policy

all: test

# One pinned lock (requirements/lock.txt, every package with its hashes) keeps the install
# deterministic and fast: unpinned, pip backtracks for a long time between kubernetes and
# botocore. `make lock` writes it from pyproject.toml and requirements/lock.in.
$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)

# Versions already in the lock are kept (uv prefers them); a new dependency in pyproject.toml
# gets pinned with its hashes. runtime.txt is the runtime subset at the same versions (the image's).
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11
lock: $(STAMP)
	$(LOCK) pyproject.toml requirements/lock.in --extra dev --output-file requirements/lock.txt
	$(LOCK) pyproject.toml --constraint requirements/lock.txt --output-file requirements/runtime.txt

# Azurite, Azure Blob's emulator, for the azblob:// tests (npm; .ci/run installs it first).
# 3.35.0: the last release that runs on Debian's Node 20 (3.36 needs Node 21, 3.37 Node 22).
AZURITE_VERSION := 3.35.0
AZURITE_STAMP := .build/node/.azurite-$(AZURITE_VERSION)
$(AZURITE_STAMP):
	mkdir -p .build/node
	npm install --prefix .build/node --no-audit --no-fund --no-save azurite@$(AZURITE_VERSION)
	@touch $@

azurite: $(AZURITE_STAMP)

demo: $(STAMP)
	$(BIN)/python -m longhorn_bi.demo

# The chart's policy validations, per version line, from the rules (tests/policy checks them).
chart-policy: $(STAMP)
	$(BIN)/python -m longhorn_bi.engine.policy > charts/longhorn-bi-webhook/files/policy-validations.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable finder, so it reads the packages through a
# small symlink tree that mirrors the installed import names (editable_mode=strict does not
# fit this layout: docs/architecture.md says why).
typecheck: $(STAMP)
	@rm -rf .build/typecheck && mkdir -p .build/typecheck/longhorn_bi
	@for d in engine plugin webhook; do ln -s ../../../$$d .build/typecheck/longhorn_bi/$$d; done
	@cp longhorn_bi/*.py .build/typecheck/longhorn_bi/
	cd .build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p longhorn_bi
	MYPYPATH=.build/typecheck $(BIN)/mypy --config-file pyproject.toml tests benchmarks

# Azurite comes with the suite where npm exists (the Azure tests skip without it on a
# workstation; .ci/run installs it first, and under CI they fail without it).
unit: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory azurite; \
	else echo "npm not found: the azblob:// tests will be skipped"; fi
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Runs against a real cluster: LONGHORN_BI_E2E_KUBECONFIG=~/.kube/config make e2e
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -m e2e

clean:
	rm -rf $(VENV) .build .mypy_cache .ruff_cache
