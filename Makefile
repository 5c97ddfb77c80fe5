# The two commands of the README: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The browser the e2e test drives; installed from Debian's packages if missing.
CHROMIUM ?= chromium
# $(call execute,NOTEBOOK) runs it in place. Its kernel talks to nbconvert over IPC, Unix sockets in a
# private temporary folder, not TCP on 127.0.0.1: the same machine either way, and no "Kernel is running
# over TCP without encryption" warning once per notebook. The path is absolute because the kernel runs
# in the notebook's folder and nbconvert in this one.
execute = dir=$$(mktemp -d) && $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	--ExecutePreprocessor.timeout=1200 --KernelManager.transport=ipc --KernelManager.ip="$$dir/kernel" $(1); \
	status=$$?; rm -rf "$$dir"; exit $$status
# Every JupyterLab started from .venv (make lab, or .venv/bin/jupyter lab) reads its app settings here.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: run test lint e2e bench bench-conv long clean lab

run: $(VENV)/.run-deps $(LAB_OVERRIDES)
	$(call execute,notebooks/Neural_net.ipynb)
	$(call execute,notebooks/Conv_net.ipynb)
	$(call execute,notebooks/Database_view.ipynb)
	$(call execute,notebooks/Draw.ipynb)
	$(BIN)/python tools/freeze_progress_bars.py notebooks/Neural_net.ipynb notebooks/Conv_net.ipynb
	$(BIN)/python -m helpers report

test: $(VENV)/.dev-deps $(LAB_OVERRIDES) lint
	$(BIN)/python -m pytest

# JupyterLab from .venv at the repository root, Neural_net.ipynb open. Its app settings are .venv's,
# installed from lab-settings/overrides.json (no pop-up asking to fetch Jupyter news). LAB_ARGS: e.g. --no-browser.
lab: $(VENV)/.run-deps $(LAB_OVERRIDES)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(LAB_ARGS) notebooks/Neural_net.ipynb

e2e: $(VENV)/.e2e-deps $(LAB_OVERRIDES)  # the browser test: JupyterLab + headless Chromium, a digit drawn with the mouse
	@command -v $(CHROMIUM) >/dev/null || { echo "installing Debian's chromium"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium; }
	$(BIN)/python -m pytest -m e2e tests/e2e

$(VENV)/.e2e-deps: requirements-e2e.txt $(VENV)/.dev-deps
	$(BIN)/python -m pip install -r requirements-e2e.txt
	touch $@

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check helpers tests notebooks bench tools

bench: bench/.venv/.deps  # writes BENCHMARKS.md (it trains the default and long recipes; not part of make test)
	bench/.venv/bin/python bench/run.py

bench-conv: bench/.venv/.deps  # rewrites section 7 of BENCHMARKS.md only: the ConvNets against PyTorch (trains nothing)
	bench/.venv/bin/python bench/conv_speed.py

bench/.venv/.deps: requirements.txt bench/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python 3.10+ needed"; exit 1; }
	test -x bench/.venv/bin/python || $(PYTHON) -m venv bench/.venv
	bench/.venv/bin/python -m pip install -r requirements.txt -r bench/requirements.txt -e .
	touch $@

long: $(VENV)/.run-deps  # the two longer recipes of README, final models on all 60,000 images (about 25 minutes)
	$(BIN)/python -m helpers train --recipe long --final --save models/long.npz
	$(BIN)/python -m helpers train --recipe conv-long --final --save models/conv-long.npz

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed; found $$($(PYTHON) --version). Use make PYTHON=python3.x"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $@

$(LAB_OVERRIDES): lab-settings/overrides.json | $(VENV)/.run-deps
	mkdir -p $(@D)
	cp lab-settings/overrides.json $@

$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.run-deps
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) database.db database.db-wal database.db-shm models tests/artifacts
