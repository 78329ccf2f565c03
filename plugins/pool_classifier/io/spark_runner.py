"""How Spark jobs run: their arguments (the same on every target) and local spark-submit.

`features_job_args` is what the `build_features` job is given for a logical date
(`score.score_job_args` the same for `score_addresses`); the local target passes them to
`spark-submit --master local[N]` (`run_local`, any job of `spark_jobs/`), the gcp target to
a Dataproc Serverless batch.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.targets import INCLUDE_DIR, PROJECT_ROOT, SPARK_JOBS_DIR, Target

log = logging.getLogger(__name__)
# What spark_jobs exit with when the data (or the order of days) is wrong: no retry helps.
DATA_ERROR_EXIT_CODE = 3


class SparkJobDataError(RuntimeError):
    """A Spark job refused its input; the message holds the job's own explanation."""

FEATURES_JOB = SPARK_JOBS_DIR / "build_features.py"
SCORE_JOB = SPARK_JOBS_DIR / "score_addresses.py"
# Warnings and errors only: the task log should show what the job says.
LOG4J_CONFIG = INCLUDE_DIR / "spark" / "log4j2.properties"


def features_job_args(target: Target, ds: str, pools_uri: str, settings: dict) -> list[str]:
    """Arguments of build_features for day `ds`; `settings` are its labelling/sampling options."""
    args = [
        "--ds", ds,
        "--extracts", datasets.extracts_root(target),
        "--state", datasets.state_root(target),
        "--features", datasets.features_root(target),
        "--pools", pools_uri,
    ]
    for name, value in sorted(settings.items()):
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def spark_submit_command(target: Target, job: Path, job_args: list[str]) -> list[str]:
    spark_submit = Path(sys.executable).with_name("spark-submit")
    command = [
        str(spark_submit),
        "--master", target.spark_master,
        "--driver-java-options", f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}",
    ]
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
