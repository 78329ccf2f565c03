"""Where a Spark job's time goes, from Spark's own event log (not a test).

Run a job with `event_log_conf(folder)` in its Spark properties; the job names each of its
phases with `spark.sparkContext.setJobDescription(...)` (the features job does: see
`spark_jobs/build_features.py`, `phase`). `profile(folder)` then reads the event log and
gives, per phase (job description): the wall time during which at least one of its jobs ran
(a union of intervals), the number of jobs, stages and tasks, the executors' run and CPU time summed over
tasks, the rows and bytes read, shuffled and written. `markdown(rows)` is the table
bench/results.md keeps.
"""
from __future__ import annotations

import gzip
import json
from collections import OrderedDict
from pathlib import Path

# Spark's task metrics, by the names the event log gives them.
_METRICS = {
    "run_ms": ("Executor Run Time", 1),
    "cpu_ms": ("Executor CPU Time", 1e-6),  # nanoseconds
    "input_rows": ("Input Metrics", "Records Read"),
    "input_bytes": ("Input Metrics", "Bytes Read"),
    "shuffle_read_bytes": ("Shuffle Read Metrics", ("Remote Bytes Read", "Local Bytes Read")),
    "shuffle_write_bytes": ("Shuffle Write Metrics", "Shuffle Bytes Written"),
    "output_rows": ("Output Metrics", "Records Written"),
    "output_bytes": ("Output Metrics", "Bytes Written"),
}


def event_log_conf(folder: str | Path) -> dict[str, str]:
    """The Spark properties that write the event log into `folder`."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": Path(folder).resolve().as_uri(),
            "spark.eventLog.compress": "false"}


def _events(folder: str | Path):
    # Spark 4 writes each application's log as a folder of rolling files (eventlog_v2_*/events_*).
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt") as lines:
            for line in lines:
                yield json.loads(line)


def _task_metric(metrics: dict, spec) -> float:
    if spec[0] in ("Executor Run Time", "Executor CPU Time"):
        return metrics.get(spec[0], 0) * spec[1]
    group = metrics.get(spec[0]) or {}
    keys = spec[1] if isinstance(spec[1], tuple) else (spec[1],)
    return sum(group.get(k, 0) for k in keys)


def profile(folder: str | Path) -> list[dict]:
    """One row per phase, in the order the phases started."""
    phases: "OrderedDict[str, dict]" = OrderedDict()
    job_phase, stage_phase = {}, {}
    for event in _events(folder):
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            props = event.get("Properties") or {}
            name = props.get("spark.job.description") or "(no description)"
            row = phases.setdefault(name, {"phase": name, "intervals": {}, "jobs": 0, "stages": 0, "tasks": 0,
                                           **{m: 0.0 for m in _METRICS}})
            row["intervals"][event["Job ID"]] = [event["Submission Time"], event["Submission Time"]]
            row["jobs"] += 1
            job_phase[event["Job ID"]] = name
            for stage in event.get("Stage Infos", []):
                stage_phase[stage["Stage ID"]] = name
        elif kind == "SparkListenerJobEnd":
            phases[job_phase[event["Job ID"]]]["intervals"][event["Job ID"]][1] = event["Completion Time"]
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if info["Stage ID"] in stage_phase and "Completion Time" in info:
                phases[stage_phase[info["Stage ID"]]]["stages"] += 1
        elif kind == "SparkListenerTaskEnd":
            name = stage_phase.get(event.get("Stage ID"))
            if name is None:
                continue
            row = phases[name]
            row["tasks"] += 1
            metrics = event.get("Task Metrics") or {}
            for key, spec in _METRICS.items():
                row[key] += _task_metric(metrics, spec)
    rows = []
    for row in phases.values():
        row["wall_s"] = _union_ms(row.pop("intervals").values()) / 1000
        rows.append(row)
    return rows


def _union_ms(intervals) -> float:
    """The time covered by the jobs' [start, end] intervals (jobs of a phase may overlap, or be
    apart: the phase's wall time is when at least one of its jobs ran)."""
    covered, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            covered, end = covered + (stop - start), stop
        elif stop > end:
            covered, end = covered + (stop - end), stop
    return covered


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def markdown(rows: list[dict]) -> str:
    lines = ["| phase (job description) | wall s | jobs | stages | tasks | executor run s | executor CPU s | "
             "rows read | bytes read | shuffled (write) | rows written | bytes written |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['wall_s']:.2f} | {r['jobs']} | {r['stages']} | {r['tasks']} | "
            f"{r['run_ms'] / 1000:.1f} | {r['cpu_ms'] / 1000:.1f} | {int(r['input_rows']):,} | "
            f"{_size(r['input_bytes'])} | {_size(r['shuffle_write_bytes'])} | {int(r['output_rows']):,} | "
            f"{_size(r['output_bytes'])} |")
    total = sum(r["wall_s"] for r in rows)
    lines.append(f"| **all phases** | **{total:.2f}** | {sum(r['jobs'] for r in rows)} | "
                 f"{sum(r['stages'] for r in rows)} | {sum(r['tasks'] for r in rows)} | "
                 f"{sum(r['run_ms'] for r in rows) / 1000:.1f} | {sum(r['cpu_ms'] for r in rows) / 1000:.1f} | | | | | |")
    return "\n".join(lines) + "\n"
