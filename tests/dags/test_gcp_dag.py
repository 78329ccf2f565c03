"""The gcp tasks wired as the DAG wires them: order, what on-call needs on every task, and a
parse that reads no setting, builds no Google client and imports no engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT
from tests.orchestration.gcp_dag import BUCKET

ORDER = [
    {"extract_day.export_blocks", "extract_day.export_outputs", "extract_day.export_inputs"},
    {"build_features"},
    {"train_model"},
    {"score_addresses"},
    {"publish_predictions.load_address_scores", "publish_predictions.load_block_pools"},
    {"record_run_cost"},
]


def test_steps_run_in_order(rendered):
    assert set(rendered) == set().union(*ORDER)
    for before, after in zip(ORDER, ORDER[1:]):
        for task_id in after:
            assert rendered[task_id].upstream_task_ids == before, task_id


def test_every_task_carries_owner_retries_and_docs(rendered):
    for task_id, task in rendered.items():
        assert task.owner == "data-engineering" and task.retries >= 1, task_id
        assert task.doc_md and task_id.rsplit(".", 1)[-1] in task.doc_md, task_id


def test_parsing_reads_no_setting_builds_no_client_and_imports_no_engine(tmp_path):
    """Without the Variable and with credentials that cannot load, the DAG still builds."""
    code = (
        "import json, sys; from tests.orchestration.gcp_dag import build_gcp_dag; "
        "from pool_classifier import targets; dag = build_gcp_dag(targets.current_target()); "
        "print(json.dumps([len(dag.tasks), [m for m in ('duckdb', 'pyspark', 'sklearn', 'sqlglot', 'joblib', "
        "'pool_classifier.steps.train_model', 'pool_classifier.io.sql_checks') if m in sys.modules]]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")}
    env.update({
        "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}{os.pathsep}{PROJECT_ROOT}",
        "POOL_CLASSIFIER_TARGET": "gcp", "POOL_CLASSIFIER_BUCKET": BUCKET,
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW_HOME": str(tmp_path / "airflow"),
    })
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    tasks, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert tasks == 9 and heavy == []
