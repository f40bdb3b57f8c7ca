# vam — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## system packages (ffprobe) and .venv with every Python dependency
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml scripts/install_system.sh scripts/install_node_tools.sh
	bash scripts/install_system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash scripts/install_node_tools.sh
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps openai-whisper==20250625  # the [openai-whisper] extra for its tests, minus triton
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

lint: install ## ruff over the code
	$(BIN)/ruff check src dags plugins tests bench
	$(BIN)/ruff format --check src dags plugins tests bench

test: install ## the whole test suite (what CI runs)
	$(BIN)/pytest

test-unit: install ## fast tests only, no servers
	$(BIN)/pytest tests/unit

run: install ## start the local stack (catalog, SeaweedFS, Airflow on 127.0.0.1:8080) and process a sample (VAM_EXECUTOR=celery: Celery workers)
	$(BIN)/python scripts/local_stack.py start

stop: ## stop everything `make run` started
	test ! -x $(BIN)/python || $(BIN)/python scripts/local_stack.py stop

soak: install ## lifecycle crash soak: 20,000 fault-point crashes and 300 SIGKILLs of `vam lifecycle run`
	LIFECYCLE_CRASHES=20000 LIFECYCLE_KILLS=300 $(BIN)/pytest -p no:cacheprovider tests/integration/test_lifecycle_crash.py

bench: install ## transcode benchmark: pipeline vs plain ffmpeg (prints ratios)
	$(BIN)/python bench/bench_transcode.py

clean: ## stop the stack and delete its data (.vam/, its catalog and Airflow databases)
	test ! -x $(BIN)/python || $(BIN)/python scripts/local_stack.py clean

.PHONY: help install lint test test-unit run stop bench clean soak
