"""How the local target runs a Spark job of `spark_jobs/`: in this process (`run`).

Each step builds its job's arguments (`steps/<task_id>.py`: `job_args`), the same on every
target; the gcp target gives them to a Dataproc Serverless batch of the same job file. The
local target runs the job's `run(spark, parse_args(args))` in the task's own process, on one
SparkSession of the target's properties that the next Spark task of the same process reuses
(`airflow dags test` runs a whole DAG run in one process: one JVM start for both Spark steps,
instead of two spark-submits of 7–10 s each). A job that refuses its data raises a `DataError`
(on Dataproc its `main` exits with `errors.DATA_ERROR_EXIT_CODE` after printing
`<ErrorClass>: why`); here it becomes `SparkJobDataError` with that line.
"""
from __future__ import annotations

import logging
import os
import sys

from pool_classifier import datasets
from pool_classifier.datasets import LOG4J_CONFIG, PROJECT_ROOT
from pool_classifier.errors import DataError
from pool_classifier.targets import Target

log = logging.getLogger(__name__)


class SparkJobDataError(DataError, RuntimeError):
    """A Spark job refused its input; the message holds the job's own explanation."""


def prepare_environment() -> None:
    """This process's environment as Spark's Python workers need it (they inherit it when the
    JVM starts): this venv's Python, the project's package on the path, UTC, loopback only."""
    for key, value in spark_env().items():
        os.environ[key] = value


def run(target: Target, task_id: str, job_args: list[str]) -> object:
    """Run `spark_jobs/<task_id>.py` in this process; returns what its `run` returns."""
    import importlib.util

    prepare_environment()
    from pool_classifier.io import spark_io

    path = datasets.spark_job_file(task_id)
    spec = importlib.util.spec_from_file_location(f"spark_jobs.{task_id}", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    conf = dict(target.spark_conf)
    conf["spark.driver.extraJavaOptions"] = (
        f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG} {conf.get('spark.driver.extraJavaOptions', '')}".strip())
    spark = spark_io.session(conf)
    log.info("Spark job %s in process: %s", path.name, " ".join(job_args))
    try:
        with spark_io.job_settings(spark, getattr(job, "SESSION_SETTINGS", {})):
            return job.run(spark, job.parse_args(job_args))
    except DataError as exc:
        raise SparkJobDataError(f"Spark job {path.name} refused the data: {type(exc).__name__}: {exc}") from exc


def spark_env() -> dict[str, str]:
    """Environment for local spark-submit: this venv's Python, the project's package."""
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    plugins = str(PROJECT_ROOT / "plugins")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([plugins, *[p for p in paths if p != plugins]])
    env.setdefault("TZ", "UTC")
    # Local mode talks only to itself: bind to loopback, never to a network interface.
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def reraise_job_error(exc: SparkJobDataError, classes: tuple[type[Exception], ...]) -> None:
    """The job names its error class in its message: raise that class, not a generic one."""
    text = str(exc)
    for cls in classes:
        marker = f"{cls.__name__}: "
        if marker in text:
            raise cls(text[text.index(marker) + len(marker):]) from exc
    raise exc
