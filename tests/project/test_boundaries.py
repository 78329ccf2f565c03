"""The layers are a structure, not a convention: only `pool_classifier.orchestration` imports
Airflow; only `pool_classifier.io.spark_io` and `spark_jobs/` import pyspark; the modules the
DAG file imports while it is parsed pull in no DuckDB, Spark, scikit-learn or pandas; and the
deployed package holds no demo tooling. Every import statement counts, top-level or inside a
function."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "plugins" / "pool_classifier"
AIRFLOW_ALLOWED = ("pool_classifier.orchestration",)
PYSPARK_ALLOWED = ("pool_classifier.io.spark_io",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT / "plugins").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_scan_sees_every_layer():
    layers = {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    assert {"orchestration", "steps", "model", "io", "targets"} <= layers
    assert "airflow" in _imports(MODULES["pool_classifier.orchestration.tasks"])  # the scan can fail


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_orchestration_imports_airflow(module):
    if _allowed(module, AIRFLOW_ALLOWED):
        return
    assert "airflow" not in _imports(MODULES[module]), (
        f"{module} imports Airflow: move the Airflow part to pool_classifier.orchestration")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_spark_io_module_imports_pyspark(module):
    if _allowed(module, PYSPARK_ALLOWED):
        return
    assert "pyspark" not in _imports(MODULES[module]), (
        f"{module} imports pyspark: Spark code lives in spark_jobs/ and pool_classifier/io/spark_io.py")


def test_spark_jobs_do_not_import_airflow():
    for job in sorted((PROJECT_ROOT / "spark_jobs").glob("*.py")):
        assert "airflow" not in _imports(job), job.name


def test_the_deployed_package_holds_no_demo_tooling():
    """The synthetic chain and the run summary are tools (tools/), not shipped to Composer or Dataproc."""
    for module, path in MODULES.items():
        assert "tools" not in _imports(path), f"{module} imports the demo tooling"
    assert not any(name.endswith(("synthetic_chain", "run_summary")) for name in MODULES)


@pytest.mark.parametrize("target_name", ["local", "gcp"])
def test_parsing_the_dag_imports_no_engine(target_name):
    """What the scheduler runs when it parses the DAG: no DuckDB, Spark, scikit-learn, pandas,
    sqlglot or joblib (the Google provider imports pandas itself: allowed on gcp only)."""
    from tests.orchestration.gcp_dag import BUCKET, SETTINGS

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "plugins"), "POOL_CLASSIFIER_TARGET": target_name}
    if target_name == "gcp":
        env |= {"POOL_CLASSIFIER_BUCKET": BUCKET, "AIRFLOW_VAR_POOL_CLASSIFIER_GCP": json.dumps(SETTINGS)}
    heavy = ("duckdb", "pyspark", "sklearn", "pandas", "sqlglot", "joblib", "numpy", "pyarrow")
    code = (
        "import runpy, sys, json; "
        f"runpy.run_path({str(PROJECT_ROOT / 'dags' / 'mining_pool_classifier.py')!r}); "
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    allowed = {"pandas", "numpy", "pyarrow"} if target_name == "gcp" else set()
    assert set(loaded) - allowed == set(), f"parsing the DAG on {target_name} imported {loaded}"


def test_the_api_imports_neither_airflow_nor_pyspark():
    """The prediction API (api/) deploys apart from Composer: no Airflow, no Spark, and of the
    pipeline only what it reads (datasets, the versioned pointers, the document index)."""
    files = sorted((PROJECT_ROOT / "api").rglob("*.py"))
    assert len(files) >= 8
    for path in files:
        imported = _imports(path)
        assert not imported & {"airflow", "pyspark", "sklearn", "tools"}, f"{path.name} imports {imported}"
    code = ("import sys, api.app, api.store, api.routers.addresses, api.routers.pools, api.routers.model; "
            "print(sorted(m for m in ('airflow', 'pyspark', 'sklearn', 'joblib') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}:{PROJECT_ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
