# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-headless test test-fast lint sample-data screenshot benchmarks clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (first run only, about 4 minutes): PyTorch (CPU build), napari, Qt, the package"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# the CPU build of PyTorch first, so that nothing pulls the CUDA wheels
	@echo "[1/2] PyTorch 2.13 (CPU)..."
	$(BIN)/pip install -q torch==2.13.0
	@echo "[2/2] napari, Qt, dask and the package (editable)..."
	$(BIN)/pip install -q -e ".[qt,testing]"
	touch $(STAMP)
	@echo "set up: $(VENV)"

demo: $(STAMP)   ## napari with the plugin and sample data (headless pipeline when there is no display)
	$(BIN)/cardiac-priors demo

demo-headless: $(STAMP)
	$(BIN)/cardiac-priors demo --headless

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/npe2 validate napari-cardiac-priors
	$(BIN)/python -c "import sys, napari_cardiac_priors; heavy = [m for m in ('torch', 'napari', 'qtpy', 'SimpleITK', 'dask') if m in sys.modules]; sys.exit(f'import napari_cardiac_priors pulls in {heavy}' if heavy else 0)"

test: $(STAMP) lint   ## the whole suite (GUI tests run under Xvfb through pytest-xvfb, installed when missing)
	@if .ci/gui-deps; then \
	  $(BIN)/python -m pytest -q --durations=10; \
	else \
	  $(BIN)/python -m pytest -q --durations=10 -m "not gui"; \
	fi

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not gui"

sample-data: $(STAMP)   ## regenerate the committed sample volumes
	$(BIN)/cardiac-priors phantom sample_data --n 1 --seed 0 --pathology NOR --lr --overwrite

screenshot: $(STAMP)   ## README screenshot: phantom LR stack with its HR labels, under Xvfb
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python docs/make_screenshots.py docs

benchmarks: $(STAMP)   ## every figure of BENCHMARKS.md (long: hours on 2 cores)
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_sslln.py
	$(BIN)/python benchmarks/bench_refine.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_acnn.py
	xvfb-run -a $(BIN)/python benchmarks/bench_sdnet.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

atlases: $(STAMP)   ## regenerate the bundled phantom atlas set
	$(BIN)/python -m napari_cardiac_priors.atlases.phantom
