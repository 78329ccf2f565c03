# The two commands of the README: `make run` and `make test`. Each installs what is
# missing first (scripts/setup.sh), so they work on a fresh machine.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export TZ := UTC

.PHONY: setup run test bench requirements clean

setup:
	@scripts/setup.sh

## Run the daily DAG through Airflow on the embedded default data and print a summary.
run: setup
	@scripts/run_local.sh

## Run every test (pytest): policy, SQL, Spark, train/score, end-to-end through Airflow.
test: setup
	@$(PY) -m pytest

## Benchmark the feature batch (Spark vs DuckDB, history growth, memory); appends to bench/results.md.
bench: setup
	@$(PY) bench/bench_features.py

## Re-pin requirements.txt from requirements.in (uv resolves in ~20 s).
requirements:
	uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt

clean:
	rm -rf data .pytest_cache
