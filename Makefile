# `make demo` and `make test` work on a fresh machine: each creates .venv and installs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev tools

demo: $(STAMP)  ## generate sample signals, train, test and predict
	rm -rf runs/demo
	$(BIN)/seqclass sample-data signals data/demo-signals
	$(BIN)/seqclass fit --config configs/demo.yaml
	$(BIN)/seqclass test --config configs/demo.yaml --ckpt_path runs/demo/checkpoints/best.ckpt
	$(BIN)/seqclass predict --config configs/demo.yaml --ckpt_path runs/demo/checkpoints/best.ckpt

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)  ## training benchmark (Lightning vs raw loop, padded vs packed)
	$(BIN)/python benchmarks/bench_train.py

clean:  ## remove generated data and runs
	rm -rf data/demo-signals runs
