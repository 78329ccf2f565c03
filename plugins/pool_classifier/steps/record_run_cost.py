"""record_run_cost: add up one run's cost records into its summary and the table the task logs.

Every step of a run records its cost (`io/cost_records.py`: one JSON record per task try, under
`run_costs/dt=<ds>/run=<run>/`); this step, a teardown that runs whatever failed, sums one
run's records. Here: the local target's records (wall time, bytes read, no bill). The gcp
target reads and writes the same records in Cloud Storage and loads them into BigQuery
(`orchestration/gcp.py`).

    python -m pool_classifier.steps.record_run_cost --ds 2024-03-01 --run-id manual__…
"""
from __future__ import annotations

import argparse
import json
import sys

from pool_classifier.io import cost_records
from pool_classifier.io.atomic import write_text_atomically
from pool_classifier.steps import STEPS
from pool_classifier.targets import Target, current_target


def local_step_inputs(target: Target, task_id: str, ds: str) -> list[str]:
    """What a local step reads (its declaration in `steps.STEPS`), for its bytes_read; the
    extract reads the warehouse file: an upper bound, DuckDB reads only the day's row groups."""
    if task_id not in STEPS:
        raise KeyError(f"no local step {task_id!r}; known: {sorted(STEPS)}")
    return STEPS[task_id].read_paths(target, ds)


def summarize_local_run(target: Target, ds: str, run_id: str) -> str:
    """The local run's cost table (written beside its records as summary.json)."""
    summary = cost_records.summarize(cost_records.read_local_records(target, ds, run_id))
    write_text_atomically(cost_records.summary_path(target, ds, run_id),
                          json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return cost_records.format_summary(summary, f"cost of {run_id} ({ds}, target {target.name})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sum up one run's cost records.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    print(summarize_local_run(current_target(), args.ds, args.run_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
