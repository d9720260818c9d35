# changelake — the two commands that matter: `make demo` and `make test`.
# Everything runs natively (no Docker engine needed); state lives in .changelake/.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test test-unit test-integration test-faults lint format up down status ui bench clean

help:
	@echo "make demo   - the whole pipeline end to end on the demo shop"
	@echo "make test   - the full test suite (unit + integration against the real stack)"
	@echo "make up / down / status / ui / bench / lint"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/changelake demo

# Two workers (pytest-xdist), each starting its own stack on free ports: most of a stack test is
# waiting on Debezium and Kafka, so two of them share the 2 cores well. --dist loadscope keeps
# each module whole, in order, on one worker (its module fixtures are set up once).
test: install
	$(BIN)/pytest -m "unit or integration" -p no:cacheprovider --durations=25 -n 2 --dist loadscope

test-unit: install
	$(BIN)/pytest -m unit

test-integration: install
	$(BIN)/pytest -m integration

test-faults: install
	$(BIN)/pytest -m faults

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

up: install
	$(BIN)/changelake up

down: install
	$(BIN)/changelake down

status: install
	$(BIN)/changelake status

# The Dagster instance lives in $CHANGELAKE_HOME/dagster, shared with `make demo`, so the UI
# shows the demo's runs; its dagster.yaml limits the warehouse and landing pools to one writer.
ui: install
	$(BIN)/changelake ui

bench: install
	$(BIN)/python -m bench

clean:
	-$(BIN)/changelake down --purge
