"""Find Bitcoin mining-pool addresses: the steps behind the `mining_pool_classifier` DAG.

Every module here is plain Python that can run from the command line; only
`dag_steps` knows Airflow, and no module here imports Spark (Spark code lives in
`spark_jobs/`). Heavy libraries are imported inside functions so that parsing the
DAG stays cheap.
"""
