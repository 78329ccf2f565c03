"""What each run cost: one record per task try, in one format for both targets.

* gcp: a BigQuery job's bytes billed (× the on-demand price per TiB) and a Dataproc
  batch's `runtime_info.approximate_usage` (milli-DCU-seconds × the DCU-hour price,
  shuffle storage GB-seconds × the GB-month price).
* local: every step records its wall time and the bytes of the files it read; nothing is
  billed, so its cost is 0.

Prices live in `include/config/prices.json` with their date and source. Records are JSON
files under `<bucket>/run_costs/dt=<ds>/run=<run>/<task>.try<N>.json` (a retry spends
again, so each try has its own record); `summarize` adds up one run, `format_summary`
is the table shown in the task log. On gcp the day's records are also loaded into the
BigQuery table `run_costs` (schema: include/schemas/pool_classifier.run_costs.json).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from pool_classifier import datasets
from pool_classifier.datasets import PRICES_FILE
from pool_classifier.targets import Target

TIB = 2**40
SUMMARY_FILE = datasets.RUN_COSTS_SUMMARY_FILE
KINDS = ("bigquery_job", "dataproc_batch", "local_task")


@dataclass(frozen=True)
class Prices:
    bigquery_usd_per_tib: float
    dcu_hour_usd: float
    shuffle_gb_month_usd: float
    hours_per_month: float
    as_of: str

    @classmethod
    def load(cls, path: str | os.PathLike = PRICES_FILE) -> "Prices":
        data = json.loads(Path(path).read_text())
        try:
            serverless = data["dataproc_serverless"]
            return cls(
                bigquery_usd_per_tib=float(data["bigquery_on_demand"]["usd_per_tib"]),
                dcu_hour_usd=float(serverless["usd_per_dcu_hour"]),
                shuffle_gb_month_usd=float(serverless["usd_per_shuffle_storage_gb_month"]),
                hours_per_month=float(data["hours_per_month"]),
                as_of=str(data["as_of"]),
            )
        except KeyError as exc:
            raise ValueError(f"{path}: missing price {exc}; see the file's _doc") from exc

    def bigquery_usd(self, bytes_billed: int) -> float:
        return bytes_billed / TIB * self.bigquery_usd_per_tib

    def dataproc_compute_usd(self, milli_dcu_seconds: int) -> float:
        return milli_dcu_seconds / 1000 / 3600 * self.dcu_hour_usd

    def dataproc_shuffle_usd(self, shuffle_storage_gb_seconds: int) -> float:
        return shuffle_storage_gb_seconds / (self.hours_per_month * 3600) * self.shuffle_gb_month_usd


@dataclass(frozen=True)
class RunInfo:
    """Which task try a record belongs to."""

    dag_id: str
    run_id: str
    logical_date: str  # ds, YYYY-MM-DD
    task_id: str
    try_number: int
    target: str

    @classmethod
    def from_context(cls, context: Mapping, target: Target) -> "RunInfo":
        """From an Airflow task context (its `ti`, `run_id`, `ds`)."""
        ti = context["ti"]
        return cls(dag_id=ti.dag_id, run_id=context["run_id"], logical_date=context["ds"],
                   task_id=ti.task_id, try_number=int(ti.try_number), target=target.name)


@dataclass(frozen=True)
class CostRecord:
    """One task try's usage and cost. Unknown figures are None, never a guessed 0."""

    dag_id: str
    run_id: str
    logical_date: str
    task_id: str
    try_number: int
    target: str
    kind: str  # one of KINDS
    resource: str  # BigQuery job, Dataproc batch name, or the local host
    state: str
    started_at: str | None
    ended_at: str | None
    wall_seconds: float | None
    bytes_read: int | None  # BigQuery: bytes processed; elsewhere: bytes of the files read
    bytes_billed: int | None
    milli_dcu_seconds: int | None
    shuffle_storage_gb_seconds: int | None
    milli_accelerator_seconds: int | None
    bigquery_usd: float
    dataproc_compute_usd: float | None
    dataproc_shuffle_usd: float | None
    cost_usd: float | None
    prices_as_of: str
    recorded_at: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, values: Mapping) -> "CostRecord":
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"cost record without {missing}: {dict(values)}")
        return cls(**{n: values[n] for n in names})


RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(CostRecord))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def _int_or_none(value) -> int | None:
    return None if value in (None, "") else int(value)


def bigquery_job_record(job, run: RunInfo, prices: Prices) -> CostRecord:
    """From a finished `google.cloud.bigquery` job (query, load…), by its public properties."""
    billed = getattr(job, "total_bytes_billed", None)
    if billed is None:
        billed = 0  # only queries are billed by bytes; loads and extracts are free
    processed = getattr(job, "total_bytes_processed", None)
    if processed is None:
        processed = getattr(job, "input_file_bytes", None)  # a load job: the files it read
    started, ended = _timestamp(job.started), _timestamp(job.ended)
    state = job.state or "UNKNOWN"
    if job.error_result:
        state = f"{state} (error: {job.error_result.get('reason', 'unknown')})"
    bigquery_usd = prices.bigquery_usd(int(billed))
    return CostRecord(
        **dataclasses.asdict(run),
        kind="bigquery_job",
        resource=f"{job.project}:{job.location}.{job.job_id}",
        state=state,
        started_at=started,
        ended_at=ended,
        wall_seconds=_seconds_between(started, ended),
        bytes_read=_int_or_none(processed),
        bytes_billed=int(billed),
        milli_dcu_seconds=None,
        shuffle_storage_gb_seconds=None,
        milli_accelerator_seconds=None,
        bigquery_usd=bigquery_usd,
        dataproc_compute_usd=None,
        dataproc_shuffle_usd=None,
        cost_usd=bigquery_usd,
        prices_as_of=prices.as_of,
        recorded_at=_now(),
    )


def _timestamp(value) -> str | None:
    """A proto Timestamp as Batch.to_dict() gives it (RFC 3339 text), or a datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).isoformat(timespec="milliseconds")


def dataproc_batch_record(batch: Mapping, run: RunInfo, prices: Prices) -> CostRecord:
    """From a Dataproc batch (`Batch.to_dict(batch)`); usage is known once it has ended."""
    usage = (batch.get("runtime_info") or {}).get("approximate_usage") or {}
    dcu = _int_or_none(usage.get("milli_dcu_seconds"))
    shuffle = _int_or_none(usage.get("shuffle_storage_gb_seconds"))
    accelerator = _int_or_none(usage.get("milli_accelerator_seconds"))
    compute_usd = None if dcu is None else prices.dataproc_compute_usd(dcu)
    shuffle_usd = None if shuffle is None else prices.dataproc_shuffle_usd(shuffle)
    started, ended = _timestamp(batch.get("create_time")), _timestamp(batch.get("state_time"))
    state = batch.get("state")
    state = getattr(state, "name", state)
    if isinstance(state, int):
        from google.cloud.dataproc_v1 import Batch

        state = Batch.State(state).name
    return CostRecord(
        **dataclasses.asdict(run),
        kind="dataproc_batch",
        resource=str(batch.get("name", "")),
        state=str(state or "UNKNOWN"),
        started_at=started,
        ended_at=ended,
        wall_seconds=_seconds_between(started, ended),
        bytes_read=None,
        bytes_billed=None,
        milli_dcu_seconds=dcu,
        shuffle_storage_gb_seconds=shuffle,
        milli_accelerator_seconds=accelerator,
        bigquery_usd=0.0,
        dataproc_compute_usd=compute_usd,
        dataproc_shuffle_usd=shuffle_usd,
        # Unknown usage stays unknown: a None cost says so in the summary.
        cost_usd=None if compute_usd is None else compute_usd + (shuffle_usd or 0.0),
        prices_as_of=prices.as_of,
        recorded_at=_now(),
    )


def local_task_record(
    run: RunInfo, host: str, state: str, started: float, ended: float, bytes_read: int | None, prices: Prices,
) -> CostRecord:
    """A local step: its wall time and the bytes it read; nothing is billed."""
    return CostRecord(
        **dataclasses.asdict(run),
        kind="local_task",
        resource=host,
        state=state,
        started_at=dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="milliseconds"),
        ended_at=dt.datetime.fromtimestamp(ended, dt.timezone.utc).isoformat(timespec="milliseconds"),
        wall_seconds=round(ended - started, 3),
        bytes_read=bytes_read,
        bytes_billed=0,
        milli_dcu_seconds=None,
        shuffle_storage_gb_seconds=None,
        milli_accelerator_seconds=None,
        bigquery_usd=0.0,
        dataproc_compute_usd=None,
        dataproc_shuffle_usd=None,
        cost_usd=0.0,
        prices_as_of=prices.as_of,
        recorded_at=_now(),
    )


def describe(record: CostRecord) -> str:
    """One line for the task log."""
    cost = "unknown" if record.cost_usd is None else f"${record.cost_usd:.4f}"
    parts = [f"{record.task_id} try {record.try_number} ({record.kind}, {record.state}): {cost}"]
    if record.bytes_billed:
        parts.append(f"{record.bytes_billed / 2**30:.2f} GiB billed")
    if record.bytes_read is not None:
        parts.append(f"{record.bytes_read / 2**30:.3f} GiB read")
    if record.milli_dcu_seconds is not None:
        parts.append(f"{record.milli_dcu_seconds / 3.6e6:.3f} DCU-hours")
    if record.shuffle_storage_gb_seconds is not None:
        parts.append(f"{record.shuffle_storage_gb_seconds:,} shuffle GB-seconds")
    if record.wall_seconds is not None:
        parts.append(f"{record.wall_seconds:.0f} s")
    return ", ".join(parts)


# ---------------------------------------------------------------- where records live


def run_costs_root(target: Target) -> str:
    return datasets.run_costs_root(target)


def day_dir(target: Target, ds: str) -> str:
    return datasets.run_costs_dir(target, ds)


def record_path(target: Target, run: RunInfo) -> str:
    """One task try's record (a retry writes its own: both were paid for)."""
    return datasets.cost_record_file(target, run.logical_date, run.run_id, run.task_id, run.try_number)


def summary_path(target: Target, ds: str, run_id: str) -> str:
    return datasets.run_cost_summary_file(target, ds, run_id)


def day_records_path(target: Target, ds: str) -> str:
    """Every record of the day (all runs) as JSON lines: the source of the day's partition."""
    return datasets.run_cost_day_records(target, ds)


def is_record_name(name: str) -> bool:
    return name.endswith(".json") and "/run=" in name and not name.endswith(f"/{SUMMARY_FILE}")


# ---------------------------------------------------------------- summaries


def summarize(records: Iterable[CostRecord]) -> dict:
    """Totals of one run: cost, bytes billed, DCU-hours, wall time; cost per task."""
    records = sorted(records, key=lambda r: (r.started_at or "", r.task_id, r.try_number))
    known = [r.cost_usd for r in records if r.cost_usd is not None]
    by_task: dict[str, float] = {}
    for r in records:
        by_task[r.task_id] = by_task.get(r.task_id, 0.0) + (r.cost_usd or 0.0)
    return {
        "records": len(records),
        "cost_usd": sum(known),
        "cost_unknown_for": sorted({f"{r.task_id} try {r.try_number}" for r in records if r.cost_usd is None}),
        "bytes_billed": sum(r.bytes_billed or 0 for r in records),
        "bigquery_usd": sum(r.bigquery_usd for r in records),
        "dcu_hours": sum(r.milli_dcu_seconds or 0 for r in records) / 3.6e6,
        "dataproc_usd": sum((r.dataproc_compute_usd or 0.0) + (r.dataproc_shuffle_usd or 0.0) for r in records),
        "wall_seconds": sum(r.wall_seconds or 0.0 for r in records),
        "by_task_usd": dict(sorted(by_task.items())),
        "prices_as_of": sorted({r.prices_as_of for r in records}),
    }


def format_summary(summary: dict, title: str) -> str:
    lines = [title]
    for task_id, usd in summary["by_task_usd"].items():
        lines.append(f"    {task_id:<36} ${usd:.4f}")
    lines.append(f"    {'total':<36} ${summary['cost_usd']:.4f}")
    lines.append(
        f"    BigQuery {summary['bytes_billed'] / 2**30:.2f} GiB billed (${summary['bigquery_usd']:.4f}); "
        f"Dataproc {summary['dcu_hours']:.3f} DCU-hours (${summary['dataproc_usd']:.4f}); "
        f"prices as of {', '.join(summary['prices_as_of']) or '-'}"
    )
    if summary["cost_unknown_for"]:
        lines.append(f"    cost unknown for: {', '.join(summary['cost_unknown_for'])}")
    return "\n".join(lines)


def to_jsonl(records: Iterable[CostRecord]) -> str:
    return "".join(r.to_json() + "\n" for r in records)


# ---------------------------------------------------------------- the local target


def bytes_under(paths: Iterable[str | os.PathLike]) -> int:
    """Total size of the files at or under the given local paths (missing paths count 0)."""
    total = 0
    for path in map(Path, paths):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


def write_local_record(target: Target, record: CostRecord) -> str:
    from pool_classifier.io.atomic import write_text_atomically

    run = RunInfo(record.dag_id, record.run_id, record.logical_date, record.task_id,
                  record.try_number, record.target)
    path = record_path(target, run)
    write_text_atomically(path, record.to_json() + "\n")
    return path


def read_local_records(target: Target, ds: str, run_id: str | None = None) -> list[CostRecord]:
    """The day's records on a local bucket, of one run or of all runs."""
    root = Path(datasets.run_costs_run_dir(target, ds, run_id) if run_id else day_dir(target, ds))
    pattern = "*.json" if run_id else "run=*/*.json"
    return [
        CostRecord.from_mapping(json.loads(p.read_text()))
        for p in sorted(root.glob(pattern)) if is_record_name(p.as_posix())
    ]


@contextlib.contextmanager
def measure_local_step(
    target: Target, run: RunInfo, reads: Iterable[str | os.PathLike], prices: Prices | None = None
) -> Iterator[None]:
    """Record a local step's wall time and the bytes of its inputs, whether it succeeds or fails.

    `reads` are the step's input files/folders (their size is measured before the step,
    so a step that replaces its input still counts what it read).
    """
    import socket

    prices = prices or Prices.load()
    bytes_read = bytes_under(reads)
    started = time.time()
    state = "failed"
    try:
        yield
        state = "success"
    finally:
        record = local_task_record(run, socket.gethostname(), state, started, time.time(), bytes_read, prices)
        write_local_record(target, record)
