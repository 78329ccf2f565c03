"""Helpers of the quality gates' tests: damage a day's Parquet file, read a gate's failures."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pool_classifier.io import atomic
from pool_classifier.steps import quality_gate
from pool_classifier.steps.quality_gate import QualityGateError


def edit(folder: str, change) -> None:
    """Rewrite the Parquet file in force of a day through `change(DataFrame) -> DataFrame`
    (same column types; every column may now hold nulls, and pandas' NaN becomes null)."""
    (file,) = atomic.data_files(folder)
    table = pq.read_table(file)
    frame = change(table.to_pandas())
    schema = pa.schema([table.schema.field(c).with_nullable(True) for c in frame.columns])
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), file)


def put_nan(folder: str, column: str, row: int) -> None:
    """Write a real NaN (not a null) into one double of a day's Parquet file in force."""
    (file,) = atomic.data_files(folder)
    table = pq.read_table(file)
    values = table.column(column).to_numpy().copy()
    values[row] = np.nan
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, table.schema.field(column), pa.array(values)), file)


def failed_checks(error: QualityGateError) -> dict[str, str]:
    """check name -> its line in the error message."""
    lines = [line.strip()[2:] for line in str(error).splitlines() if line.strip().startswith("- ")]
    return {line.split(":")[0]: line for line in lines}


def gate_fails(check, target, ds) -> dict[str, str]:
    with pytest.raises(QualityGateError) as info:
        check(target, ds)
    record = quality_gate.read_figures(target, check.__name__.replace("check_", ""), ds)
    assert record["passed"] is False
    assert {c["name"] for c in record["checks"] if not c["passed"]} == set(failed_checks(info.value))
    assert quality_gate.figures_path(target, check.__name__.replace("check_", ""), ds) in str(info.value)
    return failed_checks(info.value)
