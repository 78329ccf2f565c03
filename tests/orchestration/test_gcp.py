"""Every Google task rendered for a logical date sends what the APIs accept: batches parse
into google-cloud-dataproc's CreateBatchRequest, jobs into google-cloud-bigquery's job
configs; the bytes cap, the runtime, the sizing, fresh batch ids per try; and what one step
writes is where the next reads."""
from __future__ import annotations

import json
import re

import pytest

from pool_classifier import datasets
from pool_classifier.io import sql_checks
from pool_classifier.targets import gcp as gcp_config
from pool_classifier.targets import gcp_requests
from pool_classifier.targets.gcp import target_for_bucket
from tests.orchestration.gcp_dag import BUCKET, DS, GOOGLE_TASKS, SETTINGS, build_gcp_dag, gcp_environment, render

BATCHES = ("build_features", "train_model", "score_addresses")
EXPORTS = {f"extract_day.export_{t}": t for t in datasets.EXTRACT_TABLES}
LOADS = {"publish_predictions.load_address_scores": "address_scores",
         "publish_predictions.load_block_pools": "block_pools"}
# Label keys and values, BigQuery and Dataproc alike.
LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")


def _arg(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def data_target():
    """The gcp target's paths, independent of the rendering."""
    return target_for_bucket(BUCKET)


def schema_file(table: str):
    from pool_classifier.datasets import SCHEMA_DIR

    return SCHEMA_DIR / f"pool_classifier.{table}.json"


def test_every_google_task_is_deferrable_and_documented(rendered):
    for task_id in GOOGLE_TASKS:
        task = rendered[task_id]
        assert task.deferrable is True, task_id
        assert task.doc_md and "{" not in task.doc_md.replace("{{", ""), task_id


@pytest.mark.parametrize("task_id", BATCHES)
def test_batches_parse_into_create_batch_requests(rendered, task_id):
    from google.cloud import dataproc_v1

    task = rendered[task_id]
    batch_id = task._resolve_requested_batch_id()
    request = dataproc_v1.CreateBatchRequest(
        parent=f"projects/{task.project_id}/locations/{task.region}", batch=task.batch, batch_id=batch_id,
    )
    assert request.parent == f"projects/{SETTINGS['project']}/locations/us-central1"
    execution = request.batch.environment_config.execution_config
    assert execution.service_account == SETTINGS["service_account"]
    assert execution.authentication_config.user_workload_authentication_type.name == "SERVICE_ACCOUNT"
    assert execution.ttl.total_seconds() == gcp_config.DATAPROC_BATCH_TTL_SECONDS
    assert request.batch.pyspark_batch.python_file_uris == [datasets.code_zip_uri(SETTINGS["jobs_bucket"])]
    assert all(LABEL.match(k) and LABEL.match(v) for k, v in request.batch.labels.items())
    # A Dataproc batch id: 4-63 of [a-z0-9-], starting with a letter.
    assert re.fullmatch(r"[a-z][a-z0-9-]{2,61}[a-z0-9]", batch_id), batch_id


@pytest.mark.parametrize("task_id", BATCHES)
def test_each_try_gets_a_new_batch_id(rendered, task_id):
    """The provider adds random hex to the prefix per attempt: a retry never re-attaches."""
    task = rendered[task_id]
    assert task.batch_id is None and task.request_id is None
    first, second = task._resolve_requested_batch_id(), task._resolve_requested_batch_id()
    assert first != second
    assert first.startswith(f"{task.batch_id_prefix}-") and DS.replace("-", "") in task.batch_id_prefix


def test_the_runtime_runs_the_pinned_spark():
    from importlib.metadata import version

    pinned = ".".join(version("pyspark").split(".")[:2])
    assert gcp_config.DATAPROC_RUNTIME_SPARK[gcp_config.DATAPROC_RUNTIME_VERSION] == pinned


def _mib(memory: str) -> float:
    number, unit = float(memory[:-1]), memory[-1].lower()
    return number * {"m": 1, "g": 1024, "t": 1024 * 1024}[unit]


def test_sizing_is_small_and_allowed(gcp_target):
    """Dataproc Serverless allows 4, 8 or 16 cores, 1024–7424 MiB per core with the 10 % overhead."""
    conf = gcp_target.spark_conf
    for role in ("driver", "executor"):
        cores = int(conf[f"spark.{role}.cores"])
        assert cores == 4  # the smallest allowed
        per_core = _mib(conf[f"spark.{role}.memory"]) * 1.1 / cores
        assert 1024 <= per_core <= 7424, role
    assert int(conf["spark.executor.instances"]) == 2
    assert int(conf["spark.dynamicAllocation.maxExecutors"]) <= 4


def test_every_batch_carries_the_one_sizing(rendered, gcp_target):
    for task_id in BATCHES:
        batch = rendered[task_id].batch
        assert batch["runtime_config"]["version"] == gcp_config.DATAPROC_RUNTIME_VERSION
        assert batch["runtime_config"]["properties"] == gcp_target.spark_conf


def test_batch_arguments_are_accepted_by_the_jobs(rendered):
    from spark_jobs import build_features, train_model

    features = build_features.parse_args(rendered["build_features"].batch["pyspark_batch"]["args"])
    assert (features.ds, features.bucket) == (DS, BUCKET)
    train = train_model.parse_args(rendered["train_model"].batch["pyspark_batch"]["args"])
    assert (train.ds, train.bucket) == (DS, BUCKET)


def test_score_arguments_are_accepted_by_the_scoring_job(rendered):
    try:
        from spark_jobs import score_addresses
    except ImportError:
        pytest.skip("spark_jobs/score_addresses.py is not in the tree yet")
    args = score_addresses.parse_args(rendered["score_addresses"].batch["pyspark_batch"]["args"])
    assert args.ds == DS


@pytest.mark.parametrize("task_id, table", EXPORTS.items())
def test_exports_are_capped_query_jobs_of_the_shared_sql(rendered, task_id, table):
    import sqlglot
    from google.cloud import bigquery

    task = rendered[task_id]
    config = bigquery.QueryJobConfig.from_api_repr(task.configuration)
    assert config.maximum_bytes_billed == 20 * 2**30 and config.use_legacy_sql is False
    assert config.destination is None and all(LABEL.match(v) for v in config.labels.values())
    assert task.location == "US" and task.project_id == SETTINGS["project"]
    statement = sqlglot.parse_one(task.configuration["query"]["query"], read="bigquery")
    assert isinstance(statement, sqlglot.exp.Export)
    options = {
        "format" if isinstance(p, sqlglot.exp.FileFormatProperty) else p.name.lower():
        (p.this if isinstance(p, sqlglot.exp.FileFormatProperty) else p.args["value"]).sql("bigquery")
        for p in statement.args["options"].expressions
    }
    # Into a new version folder of the day (its id filled in when the job is submitted); the
    # day's pointer switches to it once the job succeeded.
    day = datasets.extract_dir(data_target(), table, DS)
    assert options == {"uri": f"'{day}/v={gcp_requests.VERSION_MARK}/*.parquet'",
                       "format": "'PARQUET'", "overwrite": "TRUE"}
    filled = gcp_requests.with_version(task.configuration, "20240301T000000.000000Z-abcdef01")
    assert f"{day}/v=20240301T000000.000000Z-abcdef01/*.parquet" in filled["query"]["query"]
    assert gcp_requests.VERSION_MARK in task.configuration["query"]["query"]  # the template untouched
    # The dry run estimates the same SELECT as the export runs, and it is partition-pruned.
    assert statement.this.sql("bigquery") == sqlglot.parse_one(task.estimate_sql, read="bigquery").sql("bigquery")
    assert sql_checks.partition_filter_problems(task.estimate_sql) == []
    assert task.publish_to == day


@pytest.mark.parametrize("task_id, table", LOADS.items())
def test_loads_replace_one_day_partition(rendered, task_id, table):
    from google.cloud import bigquery

    task = rendered[task_id]
    config = bigquery.LoadJobConfig.from_api_repr(task.configuration)
    destination = task.configuration["load"]["destinationTable"]
    assert (destination["projectId"], destination["datasetId"], destination["tableId"]) == (
        SETTINGS["project"], "pool_classifier", f"{table}${DS.replace('-', '')}")
    assert config.write_disposition == "WRITE_TRUNCATE" and config.create_disposition == "CREATE_NEVER"
    assert config.source_format == "PARQUET"
    # Parquet lists load as the REPEATED fields the schema declares (top_contributions).
    assert config.parquet_options.enable_list_inference is True
    schema = json.loads(schema_file(table).read_text())
    names = {f["name"]: f["type"] for f in schema}
    # The partition column is a date or a timestamp of the table; the clustering columns exist.
    assert names[config.time_partitioning.field] in ("DATE", "TIMESTAMP")
    assert set(config.clustering_fields) <= set(names)


def test_the_scores_table_has_the_columns_the_scoring_job_writes():
    from google.cloud import bigquery

    from pool_classifier.model import scoring

    fields = [bigquery.SchemaField.from_api_repr(f) for f in json.loads(schema_file("address_scores").read_text())]
    assert [f.name for f in fields] == scoring.PREDICTION_COLUMNS
    assert all(f.description for f in fields)
    top = next(f for f in fields if f.name == scoring.CONTRIBUTIONS_COLUMN)
    # The Spark job's array<struct<…>>: a REPEATED RECORD of the same members.
    assert (top.field_type, top.mode) == ("RECORD", "REPEATED")
    assert [(g.name, g.field_type) for g in top.fields] == [
        ("feature", "STRING"), ("value", "FLOAT64"), ("contribution", "FLOAT64")]
    assert scoring.CONTRIBUTIONS_TYPE == "array<struct<feature:string,value:double,contribution:double>>"


def test_what_each_step_writes_is_where_the_next_reads(rendered):
    args = {t: rendered[t].batch["pyspark_batch"]["args"] for t in BATCHES}
    # Every batch is given the one bucket; each job builds its paths with datasets.py.
    bucket = datasets.Bucket(_arg(args["build_features"], "--bucket"))
    assert {_arg(a, "--bucket") for a in args.values()} == {BUCKET}
    for task_id, table in EXPORTS.items():
        written = rendered[task_id].publish_to
        assert written == datasets.extract_dir(bucket, table, DS)
    # The loads read the files in force of the days the jobs wrote (resolved when they run).
    load_source = {t: rendered[t].load_from for t in LOADS}
    assert load_source["publish_predictions.load_block_pools"] == [datasets.features_dir(bucket, "block_pools", DS)]
    assert load_source["publish_predictions.load_address_scores"] == [datasets.predictions_dir(bucket, DS)]
    target = data_target()
    assert datasets.predictions_dir(bucket, DS) == datasets.predictions_dir(target, DS) == f"{BUCKET}/predictions/address_scores/dt={DS}"
    # Training reads the features the features job writes and writes the registry scoring reads.
    assert datasets.features_root(bucket) == datasets.features_root(target) == f"{BUCKET}/features"


def test_deploy_uploads_what_the_batches_read(rendered, tmp_path):
    from scripts import deploy_composer

    values, missing = deploy_composer.settings_from(
        deploy_composer.parse_args(["--project", SETTINGS["project"], "--environment", "env", "--bucket", BUCKET,
                                    "--jobs-bucket", SETTINGS["jobs_bucket"],
                                    "--service-account", SETTINGS["service_account"]]), placeholders=False)
    assert missing == []
    steps = deploy_composer.plan(values, "{}", tmp_path / "code.zip")
    uploaded = set()
    for step in steps:
        if step.argv[:1] == ["gcloud"] and "storage" in step.argv:
            source, destination = step.argv[step.argv.index("storage") + 2: step.argv.index("storage") + 4]
            if step.argv[step.argv.index("storage") + 1] == "rsync":
                from tests.conftest import PROJECT_ROOT

                uploaded |= {f"{destination}/{p.name}" for p in (PROJECT_ROOT / source).glob("*.py")}
            else:
                uploaded.add(destination)
    for task_id in BATCHES:
        pyspark = rendered[task_id].batch["pyspark_batch"]
        if task_id == "score_addresses" and not (deploy_composer.PROJECT_ROOT / "spark_jobs" / "score_addresses.py").exists():
            continue  # the scoring job is being written; its upload follows from the same rsync
        assert pyspark["main_python_file_uri"] in uploaded, task_id
        assert set(pyspark["python_file_uris"]) <= uploaded
    assert _arg(rendered["build_features"].batch["pyspark_batch"]["args"], "--pools") in uploaded


def test_the_bytes_cap_refuses_above_and_says_both_figures():
    gcp_requests.check_bytes_cap(5 * 2**30, 5 * 2**30, "export_outputs")  # at the cap: runs
    with pytest.raises(gcp_requests.BytesCapExceeded) as refused:
        gcp_requests.check_bytes_cap(30 * 2**30, 20 * 2**30, "export_outputs")
    message = str(refused.value)
    assert "32,212,254,720 bytes (30.00 GiB)" in message and "21,474,836,480 bytes (20.00 GiB" in message


def test_rendering_without_the_settings_says_what_to_do(gcp_target):
    from pool_classifier.targets.gcp import GcpSettingsError

    with pytest.MonkeyPatch.context() as mp:
        gcp_environment(mp)
        dag = build_gcp_dag(gcp_target)
        mp.delenv(f"AIRFLOW_VAR_{gcp_config.SETTINGS_VARIABLE.upper()}")
        with pytest.raises(GcpSettingsError, match="pool_classifier_gcp' is not set.*make deploy-composer"):
            render(dag.get_task("build_features"))
        mp.setenv(f"AIRFLOW_VAR_{gcp_config.SETTINGS_VARIABLE.upper()}",
                  json.dumps({**SETTINGS, "service_account": "", "max_bytes_billed": -1}))
        with pytest.raises(GcpSettingsError, match="missing service_account"):
            render(dag.get_task("extract_day.export_blocks"))


def test_record_run_cost_runs_last_whatever_failed(rendered):
    from airflow.task.trigger_rule import TriggerRule

    cost = rendered["record_run_cost"]
    assert cost.is_teardown and not cost.on_failure_fail_dagrun
    assert cost.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert {t.task_id for t in cost.get_flat_relatives(upstream=True)} == set(GOOGLE_TASKS)


def test_an_export_whose_sql_lost_its_partition_filter_fails_before_any_call(gcp_target):
    """No dry run, no deletion, no job: the task fails at once, without retry, saying why."""
    from airflow.exceptions import AirflowFailException

    with pytest.MonkeyPatch.context() as mp:
        gcp_environment(mp)
        task = render(build_gcp_dag(gcp_target).get_task("extract_day.export_inputs"))
    task.estimate_sql = task.estimate_sql.replace(
        f"t.block_timestamp_month BETWEEN DATE_TRUNC(DATE '{DS}', MONTH) AND DATE_TRUNC(DATE '{DS}', MONTH)\n  AND ",
        "")
    with pytest.raises(AirflowFailException, match="export_inputs: not run, .*partition column `block_timestamp_month`"):
        task.execute({})


def test_cost_records_load_into_the_run_costs_table(local_target):
    """The day's records (JSON lines) match the table's columns and types, loaded one partition."""
    import datetime as dt

    from google.cloud import bigquery

    from pool_classifier.io import cost_records

    config = gcp_requests.load_configuration(
        SETTINGS["project"], "pool_classifier", "run_costs", DS.replace("-", ""),
        [cost_records.day_records_path(local_target, DS)], "NEWLINE_DELIMITED_JSON", gcp_requests.labels("record_run_cost", DS))
    load = bigquery.LoadJobConfig.from_api_repr(config)
    assert load.write_disposition == "WRITE_TRUNCATE" and load.source_format == "NEWLINE_DELIMITED_JSON"
    assert config["load"]["destinationTable"]["tableId"] == f"run_costs${DS.replace('-', '')}"
    prices = cost_records.Prices.load()
    run = cost_records.RunInfo("mining_pool_classifier", "manual__x", DS, "train_model", 1, "local")
    record = json.loads(cost_records.local_task_record(run, "host", "success", 1709251200.0, 1709251260.5, 99, prices).to_json())
    checks = {
        "STRING": lambda v: isinstance(v, str), "INT64": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "FLOAT64": lambda v: isinstance(v, (int, float)), "DATE": dt.date.fromisoformat,
        "TIMESTAMP": dt.datetime.fromisoformat,
    }
    for field in json.loads(schema_file("run_costs").read_text()):
        value = record[field["name"]]
        assert value is None or checks[field["type"]](value) is not False, field["name"]


def test_an_export_is_published_after_its_job_and_a_load_reads_the_files_in_force(tmp_path):
    """On a store that behaves like Cloud Storage: the export's version is invisible until the
    switch; the switch names its files and drops versions older than the one it replaced; a
    load's sources are the files in force; a day never published is refused by name."""
    from pool_classifier.io import versioned

    fs = versioned.ObjectStoreFS(tmp_path / "store", bucket="pool-data-test")
    day = fs.uri("extracts/blocks/dt=2024-03-01")
    versions = ["20240301T000000.000000Z-00000001", "20240301T010000.000000Z-00000002",
                "20240301T020000.000000Z-00000003"]
    for version in versions:
        for part in ("000000000000.parquet", "000000000001.parquet"):  # EXPORT DATA's names
            fs.write_bytes(f"{day}/v={version}/{part}", version.encode())
        assert versioned.read_pointer(fs, day) is None or versioned.read_pointer(fs, day)["version"] != version
        pointer = gcp_requests.publish_export(fs, day, version)
        assert pointer["paths"] == [f"v={version}"]
    assert versioned.versions(fs, day) == versions[1:]  # the new one and the one it replaced
    assert gcp_requests.load_sources(fs, [day]) == [
        f"{day}/v={versions[-1]}/000000000000.parquet", f"{day}/v={versions[-1]}/000000000001.parquet"]
    with pytest.raises(FileNotFoundError, match="dt=2024-03-02: the step that writes it has not run"):
        gcp_requests.load_sources(fs, [fs.uri("extracts/blocks/dt=2024-03-02")])
