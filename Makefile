# The two commands of the README: `make run` and `make test`. Each installs what is
# missing first (scripts/setup.sh), so they work on a fresh machine.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export TZ := UTC

.PHONY: setup run test unit reliability e2e airflow live bench serve bench-api deploy-composer deploy-api requirements clean

setup:
	@scripts/setup.sh

## Run the daily DAG through Airflow on the embedded default data and print a summary.
run: setup
	@scripts/run_local.sh

## Run every test: pytest (policy, SQL, Spark, model, gcp rendering, reliability, `airflow
## dags test` end to end) and, side by side, the end-to-end check through Airflow's scheduler,
## REST API and UI (scripts/test_all.sh).
test: setup
	@scripts/test_all.sh

## pytest only (the reliability scenarios included: they play in background lanes meanwhile);
## Chromium first when it can be installed (the API's page tests; they skip without it).
unit: setup
	@scripts/ensure_chromium.sh --optional
	@$(PY) -m pytest

## The reliability scenarios alone: re-running days, a shuffled 7-day backfill, a SIGKILL while
## writing; all through `airflow dags test` on real Airflow DBs (part of `make test` too).
reliability: setup
	@$(PY) -m pytest -m reliability tests/reliability

## Airflow standalone, a run triggered through the REST API, the backfill recipe over two days,
## the grid page in headless Chromium (screenshot: docs/img/grid.png). Installs Chromium when missing.
e2e: setup
	@scripts/e2e.sh

## Airflow (standalone) with the project's config; UI on http://localhost:8080 (prints the login).
airflow: setup
	@scripts/airflow_standalone.sh

## The live demo: the seeded chain appended to the local warehouse as time passes (yesterday on,
## every 60 s), for the hourly DAG (`make airflow`) and the /live page (`make serve`) to move.
live: setup
	@$(PY) -m tools.live_chain $(ARGS)

## Benchmarks (not tests): the feature batch (Spark vs DuckDB, history growth, memory), then
## training on ~1 M addresses and Spark vs in-process scoring; both append to bench/results.md.
bench: setup
	@$(PY) bench/bench_features.py
	@$(PY) bench/bench_model.py

## The prediction API and its pages on http://127.0.0.1:8000 (PORT overrides), over the serving
## snapshots of every day `make run` scored (publish_serving builds the missing ones first).
serve: setup
	@scripts/serve.sh

## Benchmark of the API (not a test): 1 M addresses, lookups at 32 clients against /healthz, batches
## of 1,000, the snapshot switch under load; appends to bench/api_results.md.
bench-api: setup
	@$(PY) bench/bench_api.py

## Deploy to Cloud Composer 3 (docs/gcp.md). `make deploy-composer ARGS=--dry-run` prints
## every command without running any.
deploy-composer: setup
	@$(PY) scripts/deploy_composer.py $(ARGS)

## Deploy the prediction API to Cloud Run (docs/gcp.md, "Serving the API"): the image by Cloud
## Build, its service account reading serving/ only, the key from Secret Manager, IAM-only access.
## `make deploy-api ARGS=--dry-run` prints every command without running any.
deploy-api: setup
	@$(PY) scripts/deploy_api.py $(ARGS)

## Re-pin requirements.txt from requirements.in (uv resolves in ~20 s).
requirements:
	uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt

clean:
	rm -rf data .pytest_cache
