"""How the local target runs a Spark job of `spark_jobs/`: `spark-submit` in local mode.

Each step builds its job's arguments (`steps/<task_id>.py`: `job_args`), the same on every
target; the local target passes them to spark-submit, the gcp target to a Dataproc
Serverless batch. A job that refuses its data exits with `errors.DATA_ERROR_EXIT_CODE`
after printing `<ErrorClass>: why`; `run_local` raises `SparkJobDataError` with that line.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from pool_classifier.datasets import LOG4J_CONFIG, PROJECT_ROOT
from pool_classifier.errors import DATA_ERROR_EXIT_CODE, DataError
from pool_classifier.targets import Target

log = logging.getLogger(__name__)


class SparkJobDataError(DataError, RuntimeError):
    """A Spark job refused its input; the message holds the job's own explanation."""


def spark_submit_command(target: Target, job: Path, job_args: list[str]) -> list[str]:
    """spark-submit of `job` with the target's Spark properties (its master among them)."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    command = [str(spark_submit), "--driver-java-options", f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}"]
    for key, value in sorted(target.spark_conf.items()):
        command += ["--conf", f"{key}={value}"]
    return command + [str(job), *job_args]


def spark_env() -> dict[str, str]:
    """Environment for local spark-submit: this venv's Python, the project's package."""
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    plugins = str(PROJECT_ROOT / "plugins")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (plugins, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TZ", "UTC")
    # Local mode talks only to itself: bind to loopback, never to a network interface.
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def run_local(target: Target, job: Path, job_args: list[str]) -> str:
    """Run a Spark job in local mode, its output in the log; returns its last line.

    On failure the error holds the last 40 lines, so the task log alone explains it.
    """
    command = spark_submit_command(target, job, job_args)
    log.info("spark-submit: %s", " ".join(command))
    proc = subprocess.Popen(
        command, env=spark_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        log.info("%s", lines[-1])
    if proc.wait() == DATA_ERROR_EXIT_CODE:
        reason = next((line for line in reversed(lines) if "Error:" in line), lines[-1] if lines else "")
        raise SparkJobDataError(f"Spark job {job.name} refused the data: {reason}")
    if proc.returncode != 0:
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"Spark job {job.name} failed (exit {proc.returncode}); last lines:\n{tail}")
    return lines[-1] if lines else ""


def reraise_job_error(exc: SparkJobDataError, classes: tuple[type[Exception], ...]) -> None:
    """The job names its error class in its message: raise that class, not a generic one."""
    text = str(exc)
    for cls in classes:
        marker = f"{cls.__name__}: "
        if marker in text:
            raise cls(text[text.index(marker) + len(marker):]) from exc
    raise exc
