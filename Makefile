# The two commands of the README: `make report` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.cjlib-run
DEV_STAMP := $(VENV)/.cjlib-dev
KERNEL := $(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cjlib)" >/dev/null

SAMPLE_CUSTOMERS := 5000
SAMPLE_SEED      := 42

.PHONY: report test lab data lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The project with its run-time dependencies and its own Jupyter kernel (named python3, inside .venv).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(KERNEL)
	touch $@

# Development and Spark extras on top.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	$(KERNEL)
	touch $@ $(RUN_STAMP)

## make report: run every notebook on the bundled sample data; HTML reports land in reports/
report: $(RUN_STAMP)
	$(BIN)/cj run --out reports

## make test: the whole test suite (lint, notebooks, DuckDB/Spark parity included)
test: $(DEV_STAMP)
	$(BIN)/python -m pytest

## make lab: JupyterLab in the project environment, the project's kernel selected
lab: $(RUN_STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## make data: regenerate the committed sample in data/ (same seed -> identical files)
data: $(RUN_STAMP)
	$(BIN)/python -m cjlib.synth --out data --customers $(SAMPLE_CUSTOMERS) --seed $(SAMPLE_SEED) --overwrite --quiet

lint: $(DEV_STAMP)
	$(BIN)/ruff check cjlib tests notebooks benchmarks
	$(BIN)/ruff format --check cjlib tests notebooks benchmarks

format: $(DEV_STAMP)
	$(BIN)/ruff format cjlib tests notebooks benchmarks
	$(BIN)/ruff check --fix cjlib tests notebooks benchmarks

clean:
	rm -rf $(VENV) reports
