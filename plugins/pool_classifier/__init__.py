"""Find Bitcoin mining-pool addresses: the code behind the `mining_pool_classifier` DAG.

Layers, one package each (tests/project/test_boundaries.py keeps them apart):

    datasets.py     every dataset and every path, built in one place
    errors.py       the data errors (no retry) and the Spark jobs' exit code for them
    targets/        where the pipeline runs, chosen once: local.py (folder, DuckDB, local Spark)
                    or gcp.py (Cloud Storage, BigQuery, Dataproc Serverless; its settings)
    steps/          one module per task id (steps/<task_id>.py), plain Python runnable from the
                    command line; steps/__init__.py declares what each step reads and writes
    model/          features' definitions, training, scoring, registry, evaluation, profiles,
                    drift, the model report
    io/             atomic writes, Spark I/O (the one module that imports pyspark) and local
                    spark-submit, SQL rendering and checks, the local warehouse, the bucket
                    mirror, cost records
    orchestration/  Airflow wiring, the only package that imports Airflow: each target's task
                    builder (local.py, gcp.py on tasks.PipelineTasks), alerts, the runbook format

Spark jobs live in `spark_jobs/<task_id>.py`, SQL in `include/sql/`. Heavy libraries are
imported inside functions, so parsing the DAG stays cheap.
"""
