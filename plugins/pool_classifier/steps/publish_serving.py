"""publish_serving: the serving snapshot of a day, what the prediction API (`api/`) reads.

A day's snapshot is one DuckDB file holding, for every address scored on that day or any day
before it, its latest score (with the decision, the model version and the day it was scored),
its profile and anomaly score, what explains the score (the scoring batch's top feature
contributions, and the raw output, bias and rest they sum with; none for a day scored before
them), its features as of that day, its first and last seen times
(the state), the first day it was flagged, and its score on each day; plus the pool labels of
the day, every block's pool up to the day, the per-pool and per-day figures, the candidates
(flagged, no label explains them), and the champion's and the latest challenger's metadata and
report files. It is built from the bucket's day folders with DuckDB alone (no Spark).

Published with the project's versioned mechanism (`io/versioned.py`): the day's file is written
into a new immutable version of `serving/dt=<ds>/` whose pointer is written last, then the
pointer of `serving/` itself is switched to that version when the day is the newest one (a
backfill of an older day does not move the API back). A reader resolves `serving/_current.json`
and sees the previous complete snapshot or the new one, never a part of one.

The DAG's `publish_predictions` publishes each day's snapshot after its tables; by hand (e.g. on
a bucket scored before the API existed):

    python -m pool_classifier.steps.publish_serving --ds 2024-03-02 [--missing-only]   # scored days ≤ ds
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.errors import DataError
from pool_classifier.io import atomic, doc_index, sharded_index, versioned
from pool_classifier.model import registry
from pool_classifier.model.feature_spec import FEATURE_COLUMNS
from pool_classifier.model.scoring import CONTRIBUTIONS_COLUMN
from pool_classifier.targets import Target, current_target

TASK_ID = "publish_serving"
# The snapshot's layout; the API refuses a snapshot of another layout by name.
SNAPSHOT_LAYOUT = "3"
# What explains a score (model/contributions.py), written by the scoring batch since it computes
# them: the top contributions (list of {feature, value, contribution} structs) and the raw output,
# bias and rest they sum with. Days scored before have none (null): the API says so.
EXPLANATION_COLUMNS = ("raw_output", "contribution_bias", "contribution_rest")
# The files of a model version the API shows (metadata, the report and its plots).
MODEL_FILES = ("metadata.json", "report.md")


# Satoshi sums, exact DECIMAL(38,0) in the features: integers in the documents (int64 holds any
# real sum; one beyond it would be null rather than rounded).
_EXACT_FEATURES = frozenset({"total_tx_output_value", "total_tx_input_value"})
# One JSON document per address (scored, or labelled only): what a lookup returns. The documents
# are exported beside the DuckDB file as a document index (io/doc_index.py: a lookup is a binary
# search and a slice of a memory map, ~10 µs, where DuckDB's point query costs ~0.5 ms on 1 M
# addresses, the API's whole budget for a lookup).
# Feature values are a list in the order of meta["features"], the names once in the meta. In a
# sharded snapshot (the gcp target's) each document also holds the address's score history, so
# the DuckDB file keeps only what is small at any scale (_slim).
_DOCS_SQL = """
    CREATE TEMP TABLE docs AS
    WITH pools AS (
        SELECT address, list(struct_pack(pool_id, pool_name, label_kind, label_source, coinbase_outputs) ORDER BY pool_id) AS pools
        FROM labels GROUP BY address),
    hist AS (
        SELECT address, list(struct_pack(day := CAST(day AS VARCHAR), score, label, model_version) ORDER BY day)
               AS history
        FROM all_scores WHERE {history_in_docs} GROUP BY address)
    SELECT coalesce(s.address, p.address) AS address, CAST(to_json(struct_pack(
        address := coalesce(s.address, p.address),
        score := s.score, model_version := s.model_version, scored_day := CAST(s.scored_day AS VARCHAR),
        profile := s.profile, anomaly_score := s.anomaly_score, is_anomaly := s.is_anomaly,
        first_flagged := CAST(s.first_flagged AS VARCHAR),
        first_seen := strftime(s.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
        last_seen := strftime(s.last_seen, '%Y-%m-%dT%H:%M:%SZ'),
        contributions := json(s.contributions),
        explanation := CASE WHEN s.raw_output IS NOT NULL THEN struct_pack(
            raw_output := s.raw_output, bias := s.contribution_bias, rest := s.contribution_rest) END,
        feature_values := CASE WHEN s.address IS NOT NULL THEN [{features}] END,
        pools := p.pools{history_field})) AS VARCHAR) AS doc
    FROM latest_scored s FULL OUTER JOIN pools p ON s.address = p.address
    LEFT JOIN hist h ON h.address = coalesce(s.address, p.address)"""


def _export_docs(con, write_docs) -> int:
    """The docs table handed to `write_docs(addresses, docs)` (a document index); returns its size."""
    table = con.sql("SELECT address, doc FROM docs").to_arrow_table()
    return write_docs(table.column("address").to_pylist(), table.column("doc"))


def _sql_list(files: list[str]) -> str:
    """A DuckDB list literal of file paths (paths come from pointers, quoted, never user input)."""
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _day_files(location: str, what: str) -> list[str]:
    return atomic.files_or_fail(location, what)


def pools_sha256(con, labels: list[str]) -> str | None:
    """The sha256 of the pools list that labelled the day, as its address_labels record it
    (build_features); None for labels written before they did."""
    columns = {r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_sql_list(labels)}, hive_partitioning = false)").fetchall()}
    if "pools_sha256" not in columns:
        return None
    found = [v for v, in con.execute(
        f"SELECT DISTINCT pools_sha256 FROM read_parquet({_sql_list(labels)}, hive_partitioning = false)").fetchall()]
    if len(found) != 1:
        raise DataError(f"the address labels of the day name {len(found)} pools lists ({found}): "
                        "one day's labels come from one list")
    return found[0]


def _threshold(metadata: dict) -> float:
    return float(metadata.get("metrics", {}).get("threshold", metadata.get("threshold", 0.5)))


def decision(metadata: dict) -> dict:
    """How a version decides (model/calibration.py): its calibration method and, at its threshold,
    the target precision and the precision and recall on its evaluation rows; None-valued for a
    version saved before calibration (its score is predict_proba)."""
    calibrated = metadata.get("calibration")
    if not calibrated:
        return {"calibration": None, "target_precision": None, "target_reached": None, "precision": None,
                "recall": None}
    d = calibrated["decision"]
    return {"calibration": calibrated["method"], "target_precision": d["target_precision"],
            "target_reached": d["target_reached"], "precision": d["precision"], "recall": d["recall"]}


def _copy_model(target: Target, version: str, folder: Path) -> dict:
    """Copy a version's metadata, report and plots into the snapshot; returns its metadata."""
    source = Path(datasets.model_dir(target, version))
    out = folder / "models" / version
    out.mkdir(parents=True, exist_ok=True)
    for file in [*(source / name for name in MODEL_FILES), *sorted(source.glob("*.png"))]:
        if file.exists():
            shutil.copyfile(file, out / file.name)
    return json.loads((source / registry.METADATA_FILE).read_text())


def _challenger(target: Target, ds: str, champion: str) -> str | None:
    """The version of the latest training run on a day ≤ ds, when it is not the champion."""
    root = Path(datasets.models_root(target))
    days = sorted({m.parent.name[-10:] for m in root.glob("*-????-??-??/metadata.json")
                   if not m.parent.name.startswith(".") and m.parent.name[-10:] <= ds})
    latest = registry.trained_version(target, days[-1]) if days else None
    return latest if latest and latest != champion else None


def build_snapshot(target: Target, ds: str, out: Path, write_docs=None, index: str = "mmap") -> dict:
    """Write the snapshot of day `ds` as the DuckDB file `out`; returns its figures. The documents
    go to `write_docs(addresses, docs) -> count` (default: the memory-mapped index beside `out`);
    `index` names their kind in the meta (what the API opens)."""
    if write_docs is None:
        def write_docs(addresses, docs):
            return doc_index.write(out.parent, addresses, docs)
    import duckdb

    from pool_classifier.model.contributions import RAW_OUTPUT_KINDS

    days = [d for d in datasets.scored_days(target, ds) if atomic.exists(datasets.predictions_dir(target, d))]
    if not days or days[-1] != ds:
        raise FileNotFoundError(f"publish_serving {ds}: no predictions in force for {ds} at "
                                f"{datasets.predictions_dir(target, ds)}; run score_addresses for the day first.")
    scores = [f for d in days for f in _day_files(datasets.predictions_dir(target, d), f"scores of {d}")]
    profiles = [f for d in days for f in _day_files(datasets.profiles_dir(target, d), f"profiles of {d}")]
    features = [f for d in days for f in
                _day_files(datasets.features_dir(target, "address_features", d), f"features of {d}")]
    blocks = [f for d in days for f in
              _day_files(datasets.features_dir(target, "block_pools", d), f"block pools of {d}")]
    labels = _day_files(datasets.features_dir(target, "address_labels", ds), f"labels of {ds}")
    state = _day_files(datasets.state_dir(target, "address_state", ds), f"address state of {ds}")

    champion = registry.champion_version(target, ds)
    started = time.monotonic()
    with duckdb.connect(str(out)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 2")
        src = "read_parquet({}, hive_partitioning = false, union_by_name = true)"
        score_columns = [
            r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src.format(_sql_list(scores))}").fetchall()]
        has_contrib = CONTRIBUTIONS_COLUMN in score_columns
        contrib = f"CAST(to_json(s.{CONTRIBUTIONS_COLUMN}) AS VARCHAR)" if has_contrib else "CAST(NULL AS VARCHAR)"
        explained = ", ".join(f"s.{c}" if c in score_columns else f"CAST(NULL AS DOUBLE) AS {c}"
                              for c in EXPLANATION_COLUMNS)
        feature_cols = ", ".join(f"f.{c}" for c in FEATURE_COLUMNS)
        con.execute(f"""
            CREATE TEMP TABLE all_scores AS
            SELECT s.address, s.score, s.label, s.known_pool, s.model_version,
                   CAST(s.logical_date AS DATE) AS day, {contrib} AS contributions, {explained}
            FROM {src.format(_sql_list(scores))} s""")
        con.execute("""
            CREATE TABLE history AS
            SELECT address, day, score, label, model_version FROM all_scores ORDER BY address, day""")
        con.execute(f"""
            CREATE TEMP TABLE latest_scored AS
            WITH latest AS (
                SELECT * FROM all_scores QUALIFY row_number() OVER (PARTITION BY address ORDER BY day DESC) = 1),
            flagged AS (SELECT address, min(day) AS first_flagged FROM all_scores WHERE label GROUP BY address),
            prof AS (
                SELECT address, profile, anomaly_score, is_anomaly, CAST(logical_date AS DATE) AS day
                FROM {src.format(_sql_list(profiles))}),
            feat AS (
                SELECT f.address, CAST(regexp_extract(f.filename, 'dt=([0-9-]+)', 1) AS DATE) AS day, {feature_cols}
                FROM read_parquet({_sql_list(features)}, hive_partitioning = false, filename = true) f),
            st AS (
                -- The state's layers (a base and the daily deltas) may each hold an address: one
                -- row per address, its first and last times over them.
                SELECT address,
                       to_timestamp(min(least(out_first_time, in_first_time))) AS first_seen,
                       to_timestamp(max(greatest(out_last_time, in_last_time))) AS last_seen
                FROM read_parquet({_sql_list(state)}, hive_partitioning = false) GROUP BY address)
            SELECT l.address, l.score, l.label, l.known_pool, l.model_version, l.day AS scored_day,
                   p.profile, p.anomaly_score, p.is_anomaly, fl.first_flagged, st.first_seen, st.last_seen,
                   l.contributions, l.raw_output, l.contribution_bias, l.contribution_rest, {", ".join(f"feat.{c}" for c in FEATURE_COLUMNS)}
            FROM latest l
            LEFT JOIN prof p ON p.address = l.address AND p.day = l.day
            LEFT JOIN feat ON feat.address = l.address AND feat.day = l.day
            LEFT JOIN flagged fl ON fl.address = l.address
            LEFT JOIN st ON st.address = l.address
            ORDER BY l.address""")
        con.execute("""
            CREATE TABLE scores AS
            SELECT address, score, label, known_pool, model_version, scored_day, profile, anomaly_score, is_anomaly,
                   first_flagged, first_seen, last_seen
            FROM latest_scored ORDER BY address""")
        con.execute(f"""
            CREATE TABLE labels AS
            SELECT address, pool_id, pool_name, coinbase_outputs, label_source, label_kind
            FROM read_parquet({_sql_list(labels)}, hive_partitioning = false) ORDER BY address, pool_id""")
        in_docs = index == "sharded"  # the history goes into the documents (the DuckDB file stays small)
        con.execute(_DOCS_SQL.format(history_in_docs=str(in_docs).lower(),
                                     history_field=", history := h.history" if in_docs else "", features=", ".join(
            f"to_json(TRY_CAST(s.{c} AS BIGINT))" if c in _EXACT_FEATURES else f"to_json(s.{c})"
            for c in FEATURE_COLUMNS)))
        documents = _export_docs(con, write_docs)
        con.execute("DROP TABLE docs")
        con.execute("DROP TABLE latest_scored")
        con.execute(f"""
            CREATE TABLE block_pools AS
            SELECT block_number, block_hash, block_timestamp, pool_id, pool_name, matched_by
            FROM read_parquet({_sql_list(blocks)}, hive_partitioning = false) ORDER BY block_number""")
        con.execute("""
            CREATE TABLE pool_days AS
            WITH d AS (
                SELECT CAST(block_timestamp AS DATE) AS day, coalesce(pool_id, -1) AS pool_id,
                       coalesce(pool_name, 'unknown') AS pool_name, count(*) AS blocks
                FROM block_pools GROUP BY ALL)
            SELECT day, pool_id, pool_name, blocks, blocks / sum(blocks) OVER (PARTITION BY day) AS share
            FROM d ORDER BY day, pool_id""")
        con.execute("""
            CREATE TABLE pools AS
            WITH lab AS (
                SELECT l.pool_id, any_value(l.pool_name) AS pool_name, count(DISTINCT l.address) AS labelled,
                       count(DISTINCT l.address) FILTER (WHERE s.label) AS labelled_predicted
                FROM labels l LEFT JOIN scores s USING (address) GROUP BY l.pool_id),
            blk AS (SELECT pool_id, any_value(pool_name) AS pool_name, sum(blocks) AS blocks,
                           count(*) AS days_with_blocks FROM pool_days GROUP BY pool_id)
            SELECT coalesce(blk.pool_id, lab.pool_id) AS pool_id, coalesce(blk.pool_name, lab.pool_name) AS pool_name,
                   coalesce(blk.blocks, 0) AS blocks, coalesce(lab.labelled, 0) AS labelled,
                   coalesce(lab.labelled_predicted, 0) AS labelled_predicted
            FROM blk FULL OUTER JOIN lab ON blk.pool_id = lab.pool_id ORDER BY blocks DESC, pool_id""")
        con.execute("""
            CREATE TABLE candidates AS
            SELECT address, score, first_flagged, scored_day, model_version, profile, anomaly_score, is_anomaly
            FROM scores WHERE label AND address NOT IN (SELECT address FROM labels)
            ORDER BY score DESC, address""")
        con.execute("CREATE INDEX scores_address ON scores (address)")
        con.execute("CREATE INDEX history_address ON history (address)")
        con.execute("CREATE INDEX labels_address ON labels (address)")
        figures = {
            "addresses": con.execute("SELECT count(*) FROM scores").fetchone()[0],
            "documents": documents,
            "history_rows": con.execute("SELECT count(*) FROM history").fetchone()[0],
            "labels": con.execute("SELECT count(*) FROM labels").fetchone()[0],
            "candidates": con.execute("SELECT count(*) FROM candidates").fetchone()[0],
            "blocks": con.execute("SELECT count(*) FROM block_pools").fetchone()[0],
        }
        top = con.execute("SELECT block_number, block_timestamp FROM block_pools "
                          "ORDER BY block_number DESC LIMIT 1").fetchone()
        champion_meta = _copy_model(target, champion, out.parent)
        # An address keeps the score of the day it was last active, maybe by an older champion:
        # its decision is at the threshold of the model that scored it.
        scored_by = [v for v, in con.execute("SELECT DISTINCT model_version FROM scores ORDER BY 1").fetchall()]
        scored_meta = {v: registry.read_metadata(target, v) for v in scored_by}
        thresholds = {v: _threshold(m) for v, m in scored_meta.items()}
        decisions = {v: decision(m) for v, m in scored_meta.items()}
        # What each model's raw output is (the contributions sum to it): probability or log-odds.
        raw_outputs = {v: RAW_OUTPUT_KINDS.get(m.get("model")) for v, m in scored_meta.items()}
        challenger = _challenger(target, ds, champion)
        if challenger:
            _copy_model(target, challenger, out.parent)
        meta = {
            "layout": SNAPSHOT_LAYOUT,
            "ds": ds,
            "days": days,
            "first_day": days[0],
            "model_version": champion,
            "challenger_version": challenger,
            "threshold": _threshold(champion_meta),
            "thresholds": thresholds,
            "decisions": decisions,
            "raw_outputs": raw_outputs,
            "pools_sha256": pools_sha256(con, labels),
            "watermark": {"block_number": top[0] if top else None,
                          "block_time": top[1].isoformat() + "+00:00" if top else None},
            "has_contributions": has_contrib,
            "doc_index": index,
            "features": list(FEATURE_COLUMNS),
            "figures": figures,
            "built_at": versioned._now_iso(),
            "build_seconds": round(time.monotonic() - started, 2),
        }
        con.execute("CREATE TABLE meta (body VARCHAR)")
        con.execute("INSERT INTO meta VALUES (?)", [json.dumps(meta, sort_keys=True)])
        con.execute("CHECKPOINT")
    return meta


def _day_of_root(fs, root: str) -> str | None:
    try:
        pointer = versioned.read_pointer(fs, root)
    except versioned.PointerError:
        return None
    return pointer["meta"].get("ds") if pointer else None


# What a sharded snapshot's DuckDB file keeps: every table but the two that grow with the
# addresses; of those, the scores of the labelled addresses (the pools' pages join them), and no
# history (each document holds its own). At 1 B addresses the full file would be ~1.2 TB (1.2 KB an
# address measured on the test snapshot): more than a Cloud Run instance can copy or hold.
_SLIM_TABLES = {
    "scores": "SELECT * FROM src.scores WHERE address IN (SELECT address FROM src.labels) ORDER BY address",
    "history": "SELECT * FROM src.history WHERE false",
}


def _slim(full: Path, out: Path) -> None:
    """Copy the snapshot `full` into `out` without what grows with the addresses (_SLIM_TABLES)."""
    import duckdb

    with duckdb.connect(str(out)) as con:
        con.execute(f"ATTACH {_sql_list([str(full)])[1:-1]} AS src (READ_ONLY)")
        tables = [t for t, in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'src' "
                                          "ORDER BY table_name").fetchall()]
        for table in tables:
            con.execute(f"CREATE TABLE {table} AS {_SLIM_TABLES.get(table, f'SELECT * FROM src.{table}')}")
        for table in ("scores", "history", "labels"):
            con.execute(f"CREATE INDEX {table}_address ON {table} (address)")
        con.execute("DETACH src")
        con.execute("CHECKPOINT")


def _publish_sharded(target: Target, ds: str, fs: versioned.FileSystem, where: datasets.HasBucket) -> dict:
    """The snapshot built in a temporary folder, its documents (with their history) written as
    shards straight into a new version of `where`'s serving/dt=<ds>/ through `fs`, then its DuckDB
    file, slimmed (_slim), and the model files uploaded beside them; the version's pointer is
    written last (versioned.publish)."""
    meta: dict = {}
    with tempfile.TemporaryDirectory(prefix="publish-serving-") as tmp, \
            versioned.publish(fs, datasets.serving_dir(where, ds), meta) as folder:
        out = Path(tmp) / datasets.SERVING_FILE

        def write_docs(addresses, docs):
            return sharded_index.write(fs, folder, addresses, docs)["documents"]

        meta.update(build_snapshot(target, ds, out, write_docs=write_docs, index="sharded"))
        slim = Path(tmp) / "slim" / datasets.SERVING_FILE
        slim.parent.mkdir()
        _slim(out, slim)
        out.unlink()
        fs.write_bytes(fs.join(folder, datasets.SERVING_FILE), slim.read_bytes())
        slim.unlink()
        for file in sorted(p for p in Path(tmp).rglob("*") if p.is_file() and not p.name.endswith(".wal")):
            fs.write_bytes(fs.join(folder, file.relative_to(tmp).as_posix()), file.read_bytes())
    return meta


def publish(target: Target, ds: str, fs: versioned.FileSystem | None = None,
            where: datasets.HasBucket | None = None) -> dict:
    """Build and publish day `ds`'s snapshot; point the API at it when it is the newest day.

    Read from `target`'s bucket; written under `where`'s serving/ (default the target's) through
    `fs` (default the location's own file system). The target's `serving_index` says how the
    documents are written: "mmap" (local: a memory-mapped file, the version written as a folder)
    or "sharded" (gcp: shards on the object store, io/sharded_index.py)."""
    where = where or target
    index = getattr(target, "serving_index", "mmap")  # a bare datasets.Bucket is the local kind
    if index == "sharded":
        fs = fs or versioned.for_location(where.bucket)
        meta = _publish_sharded(target, ds, fs, where)
    else:
        fs = atomic.FS
        meta = {}
        with atomic.write_dir(datasets.serving_dir(where, ds), meta) as folder:
            meta.update(build_snapshot(target, ds, folder / datasets.SERVING_FILE))
    pointer = versioned.read_pointer(fs, datasets.serving_dir(where, ds))
    root = datasets.serving_root(where)
    newest = _day_of_root(fs, root)
    switched = newest is None or newest <= ds
    if switched:
        versioned.switch(fs, root, [f"dt={ds}/{pointer['paths'][0]}"], meta={"ds": ds, "version": pointer["version"]})
    removed = _drop_old_days(fs, where, ds) if index == "sharded" else []
    return {"ds": ds, "version": pointer["version"], "serving": switched, **meta["figures"],
            "build_seconds": meta["build_seconds"], **({"removed_days": removed} if removed else {})}


# A sharded snapshot is the whole history's documents (~0.4 TB at 1 B addresses, docs/gcp.md):
# the bucket keeps the newest two days (the one served and the one a reader may still be reading,
# as io/versioned.py keeps a version one cycle), and the day just published.
SHARDED_KEEP_DAYS = 2
_DAY = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/")


def _drop_old_days(fs: versioned.FileSystem, where: datasets.HasBucket, published: str) -> list[str]:
    """Remove the serving days older than the SHARDED_KEEP_DAYS newest (never `published`); their days."""
    days = sorted(m.group(1) for name in fs.list_dir(datasets.serving_root(where)) if (m := _DAY.fullmatch(name)))
    old = [d for d in days[:-SHARDED_KEEP_DAYS] if d != published]
    for day in old:
        versioned.remove(fs, datasets.serving_dir(where, day))
    return old


def publish_all(target: Target, until: str, missing_only: bool = False) -> list[dict]:
    """Every scored day ≤ `until` in order, each a snapshot (what the CLI does); with
    `missing_only`, only the days without one (the DAG's publish_predictions writes each day's)."""
    days = [d for d in datasets.scored_days(target, until) if atomic.exists(datasets.predictions_dir(target, d))]
    if not days:
        raise FileNotFoundError(f"publish_serving: no scored day ≤ {until} under "
                                f"{datasets.predictions_root(target)}; run the DAG (make run) first.")
    if missing_only:
        days = [d for d in days if not atomic.exists(datasets.serving_dir(target, d))]
    return [publish(target, d) for d in days]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish the serving snapshots of every scored day up to --ds.")
    parser.add_argument("--ds", required=True, help="the last day to publish (YYYY-MM-DD, UTC)")
    parser.add_argument("--missing-only", action="store_true", help="only the days that have no snapshot yet")
    args = parser.parse_args(argv)
    for summary in publish_all(current_target(), args.ds, args.missing_only):
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
