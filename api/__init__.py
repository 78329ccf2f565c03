"""The prediction API and its pages: FastAPI on uvicorn, over the serving snapshots that
`pool_classifier.steps.publish_serving` publishes. Deployed apart from Composer (e.g. Cloud Run);
imports neither Airflow nor pyspark. `python -m api` (or `make serve`) runs it."""
