"""The BigQuery tables the day's Parquet is loaded into have exactly the columns and types
the jobs write: a load into an existing table fails on any difference."""
from __future__ import annotations

import datetime as dt
import json

from pool_classifier.datasets import POOLS_FILE, SCHEMA_DIR

SPARK_TO_BIGQUERY = {"string": "STRING", "bigint": "INT64", "int": "INT64", "timestamp": "TIMESTAMP",
                     "double": "FLOAT64", "boolean": "BOOL", "date": "DATE"}


def table_columns(table: str) -> dict[str, str]:
    return {f["name"]: f["type"] for f in json.loads((SCHEMA_DIR / f"pool_classifier.{table}.json").read_text())}


def test_block_pools_table_has_the_columns_and_types_the_features_job_writes(spark):
    from pool_classifier.attribution import PoolsList
    from spark_jobs.build_features import BLOCK_POOLS_COLUMNS, attribute_blocks

    blocks = spark.createDataFrame(
        [("00ab", 840000, dt.datetime(2024, 4, 20, 0, 9, 27), "2f736c7573682f")],  # "/slush/"
        "block_hash string, block_number long, block_timestamp timestamp, coinbase_param string",
    )
    coinbase_outputs = spark.createDataFrame([("00ab", "1someone")], "block_hash string, address string")
    written = attribute_blocks(blocks, coinbase_outputs, PoolsList.load(POOLS_FILE)).select(*BLOCK_POOLS_COLUMNS)
    # names, order and types: a BigQuery load maps Parquet columns by name, the schema file by order
    assert [(f.name, SPARK_TO_BIGQUERY[f.dataType.simpleString()]) for f in written.schema.fields] == list(
        table_columns("block_pools").items())
    [row] = written.collect()
    assert (row["pool_name"], row["matched_by"]) == ("Braiins Pool", "tag")


def _bigquery_field(name: str, data_type) -> dict:
    """The BigQuery schema field a Spark column loads as: a list is REPEATED, a struct a RECORD."""
    from pyspark.sql.types import ArrayType, StructType

    mode = None
    if isinstance(data_type, ArrayType):
        mode, data_type = "REPEATED", data_type.elementType
    if isinstance(data_type, StructType):
        field = {"name": name, "type": "RECORD", "fields": [_bigquery_field(f.name, f.dataType) for f in data_type]}
    else:
        field = {"name": name, "type": SPARK_TO_BIGQUERY[data_type.simpleString()]}
    return {**field, "mode": mode} if mode else field


def _without_descriptions(fields: list[dict]) -> list[dict]:
    return [{k: (_without_descriptions(v) if k == "fields" else v) for k, v in f.items()
             if k not in ("description",) and not (k == "mode" and v == "NULLABLE")} for f in fields]


def test_address_scores_table_has_the_columns_the_scoring_job_writes(spark):
    from pyspark.sql.types import StructType

    from pool_classifier.model.scoring import PREDICTION_COLUMNS, SCORED_SCHEMA

    scored = {f.name: f.dataType for f in StructType.fromDDL(SCORED_SCHEMA)}
    written = [_bigquery_field(c, scored[c]) for c in PREDICTION_COLUMNS]
    schema = json.loads((SCHEMA_DIR / "pool_classifier.address_scores.json").read_text())
    assert written == _without_descriptions(schema)  # names, order, types, modes, nested fields
