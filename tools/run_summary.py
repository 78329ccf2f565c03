"""Summary of one day's run, read back from the outputs themselves (not from the logs).

Prints the day, blocks, transactions, addresses featured, labelled addresses per pool and
per kind (pool wallets, coinbase miners), the training run (the target, the positives per kind, (every candidate's metrics, champion vs challenger on the same rows,
promoted or not and why, the baseline under the original label rule, the report), the predictions (with the champion that made them),
profiles and anomalies, the drift check, and every output path with a checksum, so that
two runs can be compared.

    python -m tools.run_summary --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.io import atomic, versioned
from pool_classifier.model import calibration, registry
from pool_classifier.steps import score_addresses
from pool_classifier.targets import Target, current_target


def _content(file: Path) -> bytes:
    """A file's bytes; for Parquet, its rows and schema in Arrow IPC form.

    Spark's Parquet writer (parquet-mr) lists each column's encodings from a Java HashSet,
    so two writes of the same rows can differ in a few footer bytes; the rows are what a
    re-run must reproduce, so Parquet is compared by content.
    """
    if file.suffix != ".parquet":
        return file.read_bytes()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(file).replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def content_files(folder: str | Path) -> list[tuple[str, Path]]:
    """(name, file) of what a folder holds: for a versioned day, the files of the version in
    force, named as within their version (its id and pointer are when, not what); otherwise
    the visible files of the folder."""
    folder = Path(folder)
    files = atomic.data_files(folder, suffix=None)
    if files:
        return [(_within_version(f), Path(f)) for f in files]
    return sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def _within_version(file: str) -> str:
    """`…/dt=<ds>/v=<id>/part-00000.parquet` → `part-00000.parquet`."""
    parts = Path(file).parts
    last = max(i for i, part in enumerate(parts) if part.startswith("v="))
    return "/".join(parts[last + 1:])


def folder_checksum(folder: str | Path) -> str:
    """sha256 over the names and contents of what a folder holds (first 16 hex)."""
    digest = hashlib.sha256()
    for name, file in content_files(folder):
        digest.update(name.encode())
        digest.update(_content(file))
    return digest.hexdigest()[:16]


def _metrics(m: dict) -> dict:
    keys = ("pr_auc", "precision", "recall", "recall_at_95_precision", "rows", "positives")
    return {k: m[k] for k in keys}


def labels_by_pool_and_kind(labels: str) -> dict:
    """Labelled addresses of a day's `address_labels`: {pool: {kind: {"coinbase": n, "pool_list": n}}},
    pools by their number of labels (most first). A table written before the kinds counts as one
    kind, `unkinded`."""
    import duckdb

    source = atomic.duckdb_source(labels)
    columns = {r[0] for r in duckdb.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    kind = "label_kind" if "label_kind" in columns else "'unkinded'"
    rows = duckdb.execute(
        f"WITH c AS (SELECT pool_name, {kind} AS kind, label_source, count(*) AS n FROM {source} GROUP BY ALL) "
        "SELECT pool_name, kind, label_source, n FROM c "
        "ORDER BY sum(n) OVER (PARTITION BY pool_name) DESC, pool_name, kind, label_source"
    ).fetchall()
    out: dict = {}
    for pool, k, source_name, n in rows:
        out.setdefault(pool, {}).setdefault(k, {})[source_name] = n
    return out


def kind_totals(by_pool: dict) -> dict:
    """{kind: {"coinbase": n, "pool_list": n, "pools": pools with a coinbase label of that kind}}."""
    totals: dict = {}
    for kinds in by_pool.values():
        for k, sources in kinds.items():
            total = totals.setdefault(k, {"coinbase": 0, "pool_list": 0, "pools": 0})
            for source_name, n in sources.items():
                total[source_name] = total.get(source_name, 0) + n
            total["pools"] += 1 if sources.get("coinbase") else 0
    return dict(sorted(totals.items()))


def training_summary(target: Target, ds: str) -> dict:
    """The training run of `ds` (None-valued when the day did not train) and the champion."""
    promotions = registry.read_promotions(target)
    entry = registry.champion_entry(promotions, ds)
    champion = entry["version"] if entry else None
    version = registry.trained_version(target, ds)
    # The champion's decision: its threshold on its calibrated probability, with its precision and recall.
    decision = calibration.summary_line(registry.read_metadata(target, champion)) if champion else None
    if version is None:
        return {"version": None, "champion": champion, "champion_decision": decision}
    metadata = registry.read_metadata(target, version)
    compared = metadata.get("champion") or {}
    return {
        "version": version,
        "champion": champion,
        "champion_decision": decision,
        "promoted": metadata["promotion"]["promoted"],
        "reason": metadata["promotion"]["reason"],
        "split": metadata["split"],
        "candidates": {name: _metrics(c["metrics"]) for name, c in metadata["candidates"].items()},
        "challenger_vs_champion": None if "metrics" not in compared else {
            "champion": compared["version"],
            "challenger": _metrics(compared["challenger_metrics"]),
            "champion_metrics": _metrics(compared["metrics"]),
        },
        "per_pool_recall": metadata["metrics"].get("per_pool_recall", {}),
        "positives_with_features": metadata["data"]["positives_per_pool"],
        "target": metadata.get("target"),
        "per_kind": metadata.get("per_kind"),
        "label_rules": {name: {"rule": r["rule"], "positives": r["positives"],
                               "metrics": r["metrics"] and _metrics(r["metrics"]),
                               "on_fixed_target": r.get("on_fixed_target") and _metrics(r["on_fixed_target"])}
                        for name, r in (metadata.get("label_rules") or {}).items()},
        "negatives_sampled": metadata["data"]["negatives_sampled"],
        "profiles_k": metadata["profiles"]["k"],
        "report": registry.report_path(target, version),
    }


def attribution_summary(block_pools: str) -> dict:
    """The day's blocks per `matched_by`, and the pools list(s) its attribution used, as
    build_features recorded them (`pools_sha256` of features/block_pools)."""
    import duckdb

    source = atomic.duckdb_source(block_pools)
    matched = duckdb.execute(f"SELECT matched_by, count(*) FROM {source} GROUP BY 1 ORDER BY 1").fetchall()
    columns = {r[0] for r in duckdb.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    shas = [v for v, in duckdb.execute(f"SELECT DISTINCT pools_sha256 FROM {source} WHERE pools_sha256 IS NOT NULL "
                                       "ORDER BY 1").fetchall()] if "pools_sha256" in columns else []
    return {"blocks_matched_by": ", ".join(f"{m} {n}" for m, n in matched),
            "pools_sha256": ", ".join(shas) or "(not recorded: block pools written before the record)"}


def summarize(target: Target, ds: str) -> dict:
    import duckdb

    def scalar(sql: str, path: str):
        return duckdb.execute(sql.format(p=atomic.duckdb_source(path))).fetchone()[0]

    blocks_dir = datasets.extract_dir(target, "blocks", ds)
    outputs_dir = datasets.extract_dir(target, "outputs", ds)
    features = datasets.features_dir(target, "address_features", ds)
    labels = datasets.features_dir(target, "address_labels", ds)
    block_pools = datasets.features_dir(target, "block_pools", ds)
    predictions = datasets.predictions_dir(target, ds)
    profiles = datasets.profiles_dir(target, ds)
    training = training_summary(target, ds)
    drift = score_addresses.read_drift(target, ds)
    by_pool_and_kind = labels_by_pool_and_kind(labels)
    paths = {
        "extract blocks": blocks_dir,
        "extract outputs": outputs_dir,
        "extract inputs": datasets.extract_dir(target, "inputs", ds),
        "address features": features,
        "block pools": block_pools,
        "address labels": labels,
        "training set": datasets.features_dir(target, "training_features", ds),
        "address state": datasets.state_dir(target, "address_state", ds),
    }
    if training["version"]:
        paths["model"] = registry.version_dir(target, training["version"])
    paths.update({"predictions": predictions, "profiles": profiles, "drift": datasets.drift_dir(target, ds)})
    return {
        "day": ds,
        "blocks": scalar("SELECT count(*) FROM {p}", blocks_dir),
        "transactions": scalar("SELECT count(DISTINCT transaction_hash) FROM {p}", outputs_dir),
        "blocks_attributed": scalar("SELECT count(*) FROM {p} WHERE pool_id IS NOT NULL", block_pools),
        **attribution_summary(block_pools),
        "addresses_featured": scalar("SELECT count(*) FROM {p}", features),
        # The state's manifest counts its addresses (its layers repeat the addresses active again).
        "addresses_in_state": versioned.read_pointer(versioned.LocalFS(), datasets.state_dir(
            target, "address_state", ds))["meta"]["addresses"],
        "labels_by_pool_and_kind": by_pool_and_kind,
        "labels_per_kind": kind_totals(by_pool_and_kind),
        "training": training,
        "predictions": scalar("SELECT count(*) FROM {p}", predictions),
        "predicted_pools": scalar("SELECT count(*) FROM {p} WHERE label", predictions),
        "scored_with": scalar("SELECT string_agg(DISTINCT model_version, ', ') FROM {p}", predictions),
        "anomalies": scalar("SELECT count(*) FROM {p} WHERE is_anomaly", profiles),
        "profiles_used": scalar("SELECT count(DISTINCT profile) FROM {p}", profiles),
        "drift": {"status": drift["status"], "message": drift["message"]},
        "outputs": {name: {"path": p, "sha256": folder_checksum(p)} for name, p in paths.items()},
    }


def _shown(path: str) -> str:
    """A path relative to the current folder when it lies below it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _metric_line(name: str, m: dict) -> str:
    return (
        f"    {name:<28} PR-AUC {m['pr_auc']:.4f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
        f"recall@95%P {m['recall_at_95_precision']:.3f}  ({m['positives']} pools in {m['rows']:,} rows)"
    )


def render_training(t: dict) -> list[str]:
    if t["version"] is None:
        return [f"model                 no training on this day (cadence); champion {t['champion']}",
                f"champion decision     {t['champion_decision']}"]
    split = t["split"]
    target = t.get("target")
    lines = [f"training target       {', '.join(target['positive_kinds'])}; training rows per kind: "
             + ", ".join(f"{k} {v}" for k, v in target["rows_per_kind"].items())
             + f" ({target['left_out']} labelled rows of other kinds left out)"] if target else []
    lines += ["training positives (labelled, with features, of the target's kinds), per pool:"]
    lines += [f"    {name:<20} {n}" for name, n in t["positives_with_features"].items()]
    lines += [
        f"    {'total':<20} {sum(t['positives_with_features'].values())} (+ {t['negatives_sampled']} sampled negatives)",
        f"time split            on {split['key']}: cut-off {split['cutoff_utc']}; train {split['train_rows']:,} rows "
        f"({split['train_positives']} pools), calibrate {split.get('calibration_rows', 0):,} "
        f"({split.get('calibration_positives', 0)} pools), evaluate {split['eval_rows']:,} ({split['eval_positives']} pools)",
        "candidates on the evaluation set:",
    ]
    lines += [_metric_line(name, m) for name, m in t["candidates"].items()]
    versus = t["challenger_vs_champion"]
    if versus:
        lines += ["challenger vs champion, on the evaluation rows neither was trained on:"]
        lines += [_metric_line(f"{t['version']} (challenger)", versus["challenger"]),
                  _metric_line(f"{versus['champion']} (champion)", versus["champion_metrics"])]
    lines += [
        f"{'PROMOTED' if t['promoted'] else 'NOT PROMOTED':<22}{t['reason']}",
        f"champion now          {t['champion']}",
        f"champion decision     {t['champion_decision']}",
        "recall per pool       " + ", ".join(f"{p} {r['recall']:.2f} ({r['positives']})" for p, r in t["per_pool_recall"].items()),
        *_kind_lines(t.get("per_kind")),
        *_rule_lines(t.get("label_rules")),
        f"model report          {_shown(t['report'])}",
    ]
    return lines


def _kind_lines(per_kind: dict | None) -> list[str]:
    if not per_kind:
        return []
    lines = ["predicted pool per kind (this run's version, at its threshold):"]
    for kind, k in per_kind.items():
        share = "–" if k["share_predicted"] is None else f"{k['share_predicted']:.3f}"
        lines.append(f"    {kind:<20} {k['predicted_pool']} of {k['rows']} {k['scope']} ({share})"
                     f"{'  (target)' if k['target'] else ''}")
    return lines


def _rule_lines(rules: dict | None) -> list[str]:
    if not rules:
        return []
    lines = ["label rules, the baseline on the same split:"]
    for name, r in rules.items():
        lines.append(f"    {r['rule']}: {r['positives']} positives")
        if r["metrics"]:
            lines.append(_metric_line("  on its labels", r["metrics"]))
        if r.get("on_fixed_target"):
            lines.append(_metric_line("  on the fixed target", r["on_fixed_target"]))
    return lines


def render_labels(by_pool: dict, totals: dict) -> list[str]:
    """Labelled addresses per pool and per kind (from coinbases + from the pools list)."""
    kinds = list(totals)
    lines = ["labelled addresses, per pool and kind (from coinbases + from the pools list only):",
             f"    {'pool':<20} " + "  ".join(f"{k:>17}" for k in kinds)]

    def cell(sources: dict | None) -> str:
        sources = sources or {}
        return f"{sources.get('coinbase', 0):>11} + {sources.get('pool_list', 0):<3}"

    listed_only = {pool: per_kind for pool, per_kind in by_pool.items()
                   if not any(sources.get("coinbase") for sources in per_kind.values())}
    for pool, per_kind in by_pool.items():
        if pool not in listed_only:
            lines.append(f"    {str(pool):<20} " + "  ".join(cell(per_kind.get(k)) for k in kinds))
    if listed_only:
        n = sum(n for per_kind in listed_only.values() for sources in per_kind.values() for n in sources.values())
        lines.append(f"    ({len(listed_only)} other pools: {n} addresses from the pools list only)")
    lines.append(f"    {'total':<20} " + "  ".join(cell(totals[k]) for k in kinds))
    lines.append("    pools per kind: " + ", ".join(f"{k} {totals[k]['pools']}" for k in kinds))
    return lines


def render(summary: dict) -> str:
    lines = [
        f"== mining_pool_classifier run for {summary['day']} ==",
        f"blocks                {summary['blocks']} ({summary['blocks_attributed']} attributed to a pool; "
        f"matched by {summary['blocks_matched_by']})",
        f"pools list sha256     {summary['pools_sha256']}  (include/pools/pools-v2.json as the day's attribution read it)",
        f"transactions          {summary['transactions']}",
        f"addresses featured    {summary['addresses_featured']} active on the day "
        f"(of {summary['addresses_in_state']} in the history)",
    ]
    lines += render_labels(summary["labels_by_pool_and_kind"], summary["labels_per_kind"])
    lines += render_training(summary["training"])
    lines += [
        f"predictions written   {summary['predictions']} by {summary['scored_with']} "
        f"({summary['predicted_pools']} predicted pool addresses)",
        f"profiles, anomalies   {summary['profiles_used']} profiles; {summary['anomalies']} addresses flagged anomalous",
        f"drift check           {summary['drift']['status']}: {summary['drift']['message']}",
        "outputs (sha256 of each folder's contents):",
    ]
    lines += [
        f"    {name:<17} {o['sha256']}  {_shown(o['path'])}" for name, o in summary["outputs"].items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarize one day's outputs.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    summary = summarize(current_target(), args.ds)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
