"""Summary of one day's run, read back from the outputs themselves (not from the logs).

Prints the day, blocks, transactions, addresses featured, labelled pool addresses per
pool, the model version and its PR-AUC, predictions written, and every output path with
a checksum, so that two runs can be compared.

    python -m pool_classifier.run_summary --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.targets import Target, current_target
from pool_classifier.train import METADATA_FILE


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


def folder_checksum(folder: str | Path) -> str:
    """sha256 over the names and contents of the visible files of a folder (first 16 hex)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(file.relative_to(folder).as_posix().encode())
        digest.update(_content(file))
    return digest.hexdigest()[:16]


def summarize(target: Target, ds: str, model_version: str | None = None) -> dict:
    import duckdb

    def scalar(sql: str, path: str):
        return duckdb.execute(sql.format(p=f"'{path}/*.parquet'")).fetchone()[0]

    blocks_dir = datasets.extract_dir(target, "blocks", ds)
    outputs_dir = datasets.extract_dir(target, "outputs", ds)
    features = datasets.features_dir(target, "address_features", ds)
    labels = datasets.features_dir(target, "address_labels", ds)
    block_pools = datasets.features_dir(target, "block_pools", ds)
    predictions = datasets.predictions_dir(target, ds)
    version = model_version or f"rf-{ds}"
    model = datasets.model_dir(target, version)
    metadata = json.loads((Path(model) / METADATA_FILE).read_text())
    labelled = duckdb.execute(
        f"SELECT pool_name, count(*) FROM '{labels}/*.parquet' "
        "WHERE label_source = 'coinbase' GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    paths = {
        "extract blocks": blocks_dir,
        "extract outputs": outputs_dir,
        "extract inputs": datasets.extract_dir(target, "inputs", ds),
        "address features": features,
        "block pools": block_pools,
        "address labels": labels,
        "training set": datasets.features_dir(target, "training_features", ds),
        "address state": datasets.state_dir(target, "address_state", ds),
        "model": model,
        "predictions": predictions,
    }
    return {
        "day": ds,
        "blocks": scalar("SELECT count(*) FROM {p}", blocks_dir),
        "transactions": scalar("SELECT count(DISTINCT transaction_hash) FROM {p}", outputs_dir),
        "blocks_attributed": scalar("SELECT count(*) FROM {p} WHERE pool_id IS NOT NULL", block_pools),
        "addresses_featured": scalar("SELECT count(*) FROM {p}", features),
        "addresses_in_state": scalar("SELECT count(*) FROM {p}", datasets.state_dir(target, "address_state", ds)),
        "pool_addresses_by_pool": dict(labelled),
        "model_version": metadata["version"],
        "pr_auc": metadata["metrics"]["pr_auc"],
        "train_positives": metadata["metrics"]["train_positives"],
        "positives_with_features": metadata["data"]["positives_per_pool"],
        "negatives_sampled": metadata["data"]["negatives_sampled"],
        "predictions": scalar("SELECT count(*) FROM {p}", predictions),
        "predicted_pools": scalar("SELECT count(*) FROM {p} WHERE label", predictions),
        "outputs": {name: {"path": p, "sha256": folder_checksum(p)} for name, p in paths.items()},
    }


def _shown(path: str) -> str:
    """A path relative to the current folder when it lies below it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def render(summary: dict) -> str:
    lines = [
        f"== mining_pool_classifier run for {summary['day']} ==",
        f"blocks                {summary['blocks']} ({summary['blocks_attributed']} attributed to a pool)",
        f"transactions          {summary['transactions']}",
        f"addresses featured    {summary['addresses_featured']} active on the day "
        f"(of {summary['addresses_in_state']} in the history)",
        "pool addresses (labelled from coinbases), per pool:",
    ]
    lines += [f"    {name:<20} {n}" for name, n in summary["pool_addresses_by_pool"].items()]
    lines += [
        f"    {'total':<20} {sum(summary['pool_addresses_by_pool'].values())}",
        "pool addresses with features (the training positives), per pool:",
    ]
    lines += [f"    {name:<20} {n}" for name, n in summary["positives_with_features"].items()]
    lines += [
        f"    {'total':<20} {sum(summary['positives_with_features'].values())} "
        f"(+ {summary['negatives_sampled']} sampled negatives)",
        f"model                 {summary['model_version']}  PR-AUC {summary['pr_auc']:.4f} "
        f"on the held-out quarter (fit on {summary['train_positives']} positives)",
        f"predictions written   {summary['predictions']} ({summary['predicted_pools']} predicted pool addresses)",
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
