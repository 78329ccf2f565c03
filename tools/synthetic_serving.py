"""A synthetic bucket in the exact shapes the pipeline writes, for what `publish_serving` reads:
per day `predictions/{address_scores,address_profiles}`, `features/{address_features,
address_labels,block_pools}`, `state/address_state` (each a versioned location, as the Spark jobs
publish them), and the model registry (`models/<version>/metadata.json`, `report.md`, a plot,
`champion.json`). Seeded and fast (numpy, pyarrow): the API's tests build a small one in seconds,
the API benchmark a million addresses. Column names and types equal a real run's (checked by
tests/api/test_fixture_schema.py against tests/api/real_schema.json, captured from `make run`:

    python -m tools.synthetic_serving capture-schema data/bucket 2024-03-02 > tests/api/real_schema.json

or for one dataset from any bucket the real jobs wrote, the other entries kept:
`python -m tools.synthetic_serving capture-schema <bucket> <day> predictions/address_scores`; the
scores' entry now comes from `python -m tools.capture_scores_schema`, which runs the real scoring
job on a small bucket).

What it writes, so tests can predict answers (`Truth` returns it):
* address i is P2PKH, P2WPKH, P2TR or P2SH by i % 10 (0-4, 5-7, 8, 9), from a seeded hash;
* every 50th address is labelled for one of POOLS (coinbase, or pool_list for every 4th of them),
  and scores high; address i with i % 200 == 101 (unlabelled) scores high too (a candidate);
* `coinbase_only` more pool addresses are labelled but never active: no features, no score;
* every score is explained (but on the days `contributions` leaves out: the scores of a batch
  before contributions existed):
  raw_output = logit(score), contribution_bias = BIAS, the CONTRIBUTING features' shares of
  raw − bias as top_contributions (with the features' values) and the remainder as the rest;
* address i with i % 7 == 3 is active on the first day only (its latest score is that day's);
  the others on each day with probability `active_share` (every address on the last day when
  `all_last_day`).
"""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from tools.synthetic_chain import b58check_encode, segwit_encode

# what the features job records of the list it used (the fixture's pools are ids and names of it)
POOLS_SHA256 = hashlib.sha256(datasets.POOLS_FILE.read_bytes()).hexdigest()
POOLS = ((142, "OCEAN"), (22, "Eligius"), (48, "KanoPool"), (111, "Foundry USA"), (44, "AntPool"))
THRESHOLD = 0.5
FIRST_BLOCK = 832_800
BLOCKS_PER_DAY = 144
_DECIMAL_FEATURES = {"total_tx_output_value", "total_tx_input_value"}
_INT32_FEATURES = {"output_active_months", "input_active_months", "has_received", "has_spent"}
_DEC = pa.decimal128(38, 0)
_DATES = pa.list_(pa.field("element", pa.date32()))


def _feature_type(name: str) -> pa.DataType:
    if name in _DECIMAL_FEATURES:
        return _DEC
    if name in _INT32_FEATURES:
        return pa.int32()
    if name.startswith(("mean_", "stddev_")):
        return pa.float64()
    return pa.int64()


_CONTRIBUTION = pa.struct([("feature", pa.string()), ("value", pa.float64()), ("contribution", pa.float64())])
# What explains a score, as the scoring batch writes it since it computes contributions.
_EXPLANATION = [("raw_output", pa.float64()), ("contribution_bias", pa.float64()),
                ("top_contributions", pa.list_(pa.field("element", _CONTRIBUTION))),
                ("contribution_rest", pa.float64())]
# The synthetic decomposition: these features get these shares of raw − bias, the rest the remainder.
CONTRIBUTING = (("total_tx_input_count", 0.5), ("mean_tx_output_value", -0.25), ("total_tx_input_value", 0.2),
                ("mean_input_idle_time", 0.1), ("has_spent", -0.05))
BIAS = -3.0
_SCORES_BEFORE = [("address", pa.string()), ("score", pa.float64()), ("label", pa.bool_()),
                  ("known_pool", pa.bool_()), ("model_version", pa.string()), ("logical_date", pa.date32())]

SCHEMAS = {
    "predictions/address_scores": pa.schema([*_SCORES_BEFORE, *_EXPLANATION]),
    # The scores of a batch before contributions existed (a snapshot may hold such days).
    "predictions/address_scores_before": pa.schema(_SCORES_BEFORE),
    "predictions/address_profiles": pa.schema([("address", pa.string()), ("profile", pa.int32()),
                                               ("anomaly_score", pa.float64()), ("is_anomaly", pa.bool_()),
                                               ("model_version", pa.string()), ("logical_date", pa.date32())]),
    "features/address_features": pa.schema([("address", pa.string()),
                                            *((n, _feature_type(n)) for n in FEATURE_COLUMNS),
                                            (FIRST_SEEN, pa.int64())]),
    "features/address_labels": pa.schema([("address", pa.string()), ("pool_id", pa.int64()),
                                          ("pool_name", pa.string()), ("coinbase_outputs", pa.int64()),
                                          ("label_source", pa.string()), ("label_kind", pa.string()),
                                          ("coinbase_blocks", pa.int64()), ("coinbase_value", pa.int64()),
                                          ("pool_blocks", pa.int64()), ("pool_outputs_per_block", pa.float64()),
                                          ("pool_payout", pa.string()), ("block_share", pa.float64()),
                                          ("value_share", pa.float64()), ("original_rule", pa.bool_()),
                                          ("pools_sha256", pa.string())]),
    "features/block_pools": pa.schema([("block_hash", pa.string()), ("block_number", pa.int64()),
                                       ("block_timestamp", pa.timestamp("ns")), ("pool_id", pa.int64()),
                                       ("pool_name", pa.string()), ("matched_by", pa.string()),
                                       ("pools_sha256", pa.string())]),
    "state/address_state": pa.schema([("address", pa.string()), *(
        (f"{side}_{name}", kind) for side in ("out", "in") for name, kind in (
            ("n", pa.int64()), ("value_sum", _DEC), ("value_sumsq", _DEC), ("tx", pa.int64()),
            ("month_min", pa.date32()), ("month_max", pa.date32()), ("months", _DATES),
            ("first_time", pa.int64()), ("last_time", pa.int64()), ("times", pa.int64()),
            ("gap_sum", _DEC), ("gap_sumsq", _DEC)))]),
}


@dataclass
class Truth:
    """What was written: enough for tests to know every answer."""

    days: list[str]
    addresses: list[str]
    labels: dict[str, tuple[int, str, str]]  # address -> (pool_id, pool_name, label_source)
    coinbase_only: list[str]
    scores: dict[tuple[str, str], float] = field(default_factory=dict)  # (address, day) -> score (small runs)
    champion: str = ""
    challenger: str | None = None


def address(i: int, seed: int) -> str:
    """The i-th synthetic address: a valid mainnet address of the kind i % 10 says."""
    h = hashlib.sha256(f"{seed}:{i}".encode()).digest()
    kind = i % 10
    if kind < 5:
        return b58check_encode(b"\x00" + h[:20])
    if kind < 8:
        return segwit_encode(0, h[:20])
    if kind == 8:
        return _taproot(h)
    return b58check_encode(b"\x05" + h[:20])


def _taproot(program: bytes) -> str:
    from embit import bech32

    return bech32.encode("bc", 1, program)


def png(width: int = 240, height: int = 140, seed: int = 0) -> bytes:
    """A small real PNG (bars of a few colours): what a report's plot file is to a browser."""
    rng = np.random.default_rng(seed)
    heights = rng.integers(height // 5, height, size=6)
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            bar = x * 6 // width
            on = height - y <= heights[bar]
            row += bytes((40 + 30 * bar, 110, 200 - 25 * bar) if on else (250, 250, 250))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) \
        + chunk(b"IEND", b"")


def _write(location: str, table: pa.Table, name: str) -> None:
    expected = SCHEMAS[name]
    table = table.cast(expected) if table.schema != expected else table
    with atomic.write_dir(location) as folder:
        pq.write_table(table, Path(folder) / "part-00000.parquet", row_group_size=200_000)


def _decimals(values: np.ndarray) -> pa.Array:
    return pa.array([decimal.Decimal(int(v)) for v in values], type=_DEC)


def _write_model(where, version: str, day: str, promoted: bool, champion: str | None, seed: int) -> None:
    folder = Path(datasets.model_dir(where, version))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    metrics = {"threshold": THRESHOLD, "pr_auc": round(float(rng.uniform(0.75, 0.99)), 4),
               "precision": round(float(rng.uniform(0.5, 0.9)), 4), "recall": round(float(rng.uniform(0.8, 1)), 4),
               "rows": 1000, "positives": 20, "per_pool_recall": {n: {"positives": 4, "recall": 1.0} for _, n in POOLS}}
    metadata = {
        "version": version, "trained_for": day, "model": "HistGradientBoostingClassifier", "candidate": "hgb",
        "threshold": THRESHOLD, "metrics": metrics, "features": list(FEATURE_COLUMNS[4:]),
        # The scores are the sigmoid of the raw output (a = -1, b = 0): calibrated as train_model stores it.
        "calibration": {"method": "sigmoid", "input": "decision_function", "a": -1.0, "b": 0.0,
                        "negative_weight": 1.0, "population": "training set",
                        "brier_raw": 0.02, "brier_calibrated": 0.01, "reliability": [], "reliability_raw": [],
                        "decision": {"threshold": THRESHOLD, "target_precision": 0.95, "target_reached": True,
                                     "precision": metrics["precision"], "recall": metrics["recall"]}},
        "data": {"window": {"first_day": day, "last_day": day}, "rows": 1000, "positives": 20},
        "promotion": {"promoted": promoted, "champion_before": champion, "champion_after": version if promoted
                      else champion, "reason": "first champion" if promoted else f"does not beat {champion}"},
        "champion": None if promoted else {"metrics": {**metrics, "pr_auc": round(metrics["pr_auc"] + 0.01, 4)},
                                           "challenger_metrics": metrics},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    (folder / "report.md").write_text(f"# Model report: `{version}`\n\nTraining run of **{day}**.\n\n"
                                      "## Precision–recall curves\n\n![precision-recall curves](pr_curve.png)\n")
    (folder / "pr_curve.png").write_bytes(png(seed=seed))


def write_bucket(bucket: str, days: list[str], n_addresses: int, seed: int = 7, active_share: float = 0.6,
                 coinbase_only: int = 3, all_last_day: bool = False, contributions: bool | tuple[str, ...] = True,
                 keep_scores: bool = True) -> Truth:
    """Write the datasets of `days` (oldest first) under `bucket`; returns what was written.

    `contributions`: every day's scores explained (True), none (False), or those of the days listed.
    """
    where = datasets.Bucket(bucket)
    rng = np.random.default_rng(seed)
    n = n_addresses
    names = [address(i, seed) for i in range(n)]
    idx = np.arange(n)
    labelled = idx % 50 == 0
    candidate = idx % 200 == 101
    pool_of = (idx // 50) % len(POOLS)
    base = np.where(labelled, rng.beta(8, 1, n), np.where(candidate, rng.uniform(0.7, 0.99, n), rng.beta(1, 25, n)))
    only_first = idx % 7 == 3
    extra = [address(n + k, seed) for k in range(coinbase_only)]
    labels = {names[i]: (POOLS[pool_of[i]][0], POOLS[pool_of[i]][1], "pool_list" if (i // 50) % 4 == 3 else "coinbase")
              for i in np.flatnonzero(labelled)}
    labels |= {a: (POOLS[k % len(POOLS)][0], POOLS[k % len(POOLS)][1], "coinbase") for k, a in enumerate(extra)}
    truth = Truth(list(days), names, labels, extra)
    seen_first = np.full(n, -1, dtype=np.int64)
    seen_last = np.full(n, -1, dtype=np.int64)
    label_names = sorted(labels)
    outputs = [0 if labels[a][2] == "pool_list" else 20 + len(a) for a in label_names]
    # A pool paying its miners in the coinbase: every third pool (by id).
    miners = [labels[a][0] % 3 == 0 for a in label_names]
    label_table = pa.table({
        "address": label_names,
        "pool_id": [labels[a][0] for a in label_names],
        "pool_name": [labels[a][1] for a in label_names],
        "coinbase_outputs": outputs,
        "label_source": [labels[a][2] for a in label_names],
        "label_kind": ["coinbase_miner" if m and labels[a][2] == "coinbase" else "pool_wallet"
                       for a, m in zip(label_names, miners)],
        "coinbase_blocks": outputs,
        "coinbase_value": [n * 312_500_000 for n in outputs],
        "pool_blocks": [300] * len(label_names),
        "pool_outputs_per_block": [80.0 if m else 1.5 for m in miners],
        "pool_payout": ["miners" if m else "wallet" for m in miners],
        "block_share": [n / 300 for n in outputs],
        "value_share": [n / 300 / (80.0 if m else 1.5) for n, m in zip(outputs, miners)],
        "original_rule": [n >= 20 for n in outputs],
        "pools_sha256": [POOLS_SHA256] * len(label_names),
    })
    block = FIRST_BLOCK
    for d, day in enumerate(days):
        date = dt.date.fromisoformat(day)
        start = int(dt.datetime.combine(date, dt.time(), dt.timezone.utc).timestamp())
        if d == 0:
            active = ~np.zeros(n, dtype=bool)
        elif all_last_day and d == len(days) - 1:
            active = ~only_first
        else:
            active = (rng.random(n) < active_share) & ~only_first
        rows = np.flatnonzero(active)
        m = len(rows)
        score = np.clip(base[rows] + rng.normal(0, 0.02, m), 0, 1)
        times = start + rng.integers(0, 86_400, m)
        seen_first[rows] = np.where(seen_first[rows] < 0, times, seen_first[rows])
        seen_last[rows] = np.maximum(seen_last[rows], times)
        addr = [names[i] for i in rows]
        version = f"hgb-{days[0]}"
        dates = pa.array([date] * m, pa.date32())
        known = labelled[rows]
        scores = {"address": addr, "score": score, "label": score >= THRESHOLD, "known_pool": known,
                  "model_version": [version] * m, "logical_date": dates}
        scores_table = pa.table(scores)
        if keep_scores:
            truth.scores.update({(a, day): float(s) for a, s in zip(addr, score)})
        anomaly = rng.uniform(0.3, 0.8, m)
        _write(datasets.profiles_dir(where, day), pa.table({
            "address": addr, "profile": pa.array(rows % 6, pa.int32()), "anomaly_score": anomaly,
            "is_anomaly": anomaly > 0.75, "model_version": [version] * m, "logical_date": dates}),
            "predictions/address_profiles")
        month = int(dt.datetime(date.year, date.month, 1, tzinfo=dt.timezone.utc).timestamp())
        count = rng.integers(1, 40, m)
        value = rng.integers(1_000, 5_000_000_000, m)
        features = {"address": addr}
        for name in FEATURE_COLUMNS:
            kind = _feature_type(name)
            if name in _DECIMAL_FEATURES:
                features[name] = _decimals(value * count)
            elif name.endswith(("month_min", "month_max")):
                features[name] = np.full(m, month, dtype=np.int64)
            elif name in ("has_received", "has_spent"):
                features[name] = pa.array(np.ones(m, dtype=np.int32))
            elif kind == pa.float64():
                features[name] = (value / (1 + (hash(name) % 5))).astype(np.float64)
            elif kind == pa.int32():
                features[name] = pa.array(np.ones(m, dtype=np.int32))
            else:
                features[name] = count.astype(np.int64) if "count" in name or "tx" in name else np.zeros(m, np.int64)
        features[FIRST_SEEN] = seen_first[rows]
        _write(datasets.features_dir(where, "address_features", day), pa.table(features), "features/address_features")
        if contributions is True or (contributions and day in contributions):
            _write(datasets.predictions_dir(where, day), _explained(scores_table, score, features),
                   "predictions/address_scores")
        else:
            _write(datasets.predictions_dir(where, day), scores_table, "predictions/address_scores_before")
        _write(datasets.features_dir(where, "address_labels", day), label_table, "features/address_labels")
        weights = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
        pools = rng.choice(len(POOLS) + 1, BLOCKS_PER_DAY, p=np.append(weights * 0.97, 0.03))
        seconds = np.sort(start + rng.integers(0, 86_400, BLOCKS_PER_DAY))
        stamps = seconds.astype("datetime64[s]").astype("datetime64[ns]")
        _write(datasets.features_dir(where, "block_pools", day), pa.table({
            "block_hash": [hashlib.sha256(f"{seed}:{block + k}".encode()).hexdigest() for k in range(BLOCKS_PER_DAY)],
            "block_number": np.arange(block, block + BLOCKS_PER_DAY, dtype=np.int64),
            "block_timestamp": pa.array(stamps, pa.timestamp("ns")),
            "pool_id": pa.array([POOLS[p][0] if p < len(POOLS) else None for p in pools], pa.int64()),
            "pool_name": pa.array([POOLS[p][1] if p < len(POOLS) else None for p in pools], pa.string()),
            "matched_by": ["tag" if p < len(POOLS) else "none" for p in pools],
            "pools_sha256": [POOLS_SHA256] * BLOCKS_PER_DAY}), "features/block_pools")
        block += BLOCKS_PER_DAY
        _write_state(where, day, names, seen_first, seen_last, date)
    _write_registry(where, days, seed, truth)
    return truth


def _explained(table: pa.Table, score: np.ndarray, features: dict) -> pa.Table:
    """The scores with their synthetic explanation: bias + Σ top contributions + rest = raw output."""
    m = len(score)
    p = np.clip(score, 1e-9, 1 - 1e-9)
    raw = np.log(p / (1 - p))
    shares = np.array([w for _, w in CONTRIBUTING])
    parts = (raw - BIAS)[:, None] * shares[None, :]
    order = np.argsort(-np.abs(shares), kind="stable")  # largest first, as the batch ranks them
    k = len(order)
    names = pa.array([CONTRIBUTING[j][0] for j in order] * m)
    values = np.column_stack([np.asarray(pa.array(features[CONTRIBUTING[j][0]]).cast(pa.float64()))
                              for j in order]).ravel()
    structs = pa.StructArray.from_arrays([names, pa.array(values), pa.array(parts[:, order].ravel())],
                                         fields=list(_CONTRIBUTION))
    tops = pa.ListArray.from_arrays(pa.array(np.arange(0, m * k + 1, k, dtype=np.int32)), structs)
    total = np.zeros(m)
    for j in order:
        total = total + parts[:, j]
    rest = raw - (BIAS + total)
    return (table.append_column("raw_output", pa.array(raw)).append_column("contribution_bias", pa.array(np.full(m, BIAS)))
            .append_column("top_contributions", tops).append_column("contribution_rest", pa.array(rest)))


def _write_state(where, day: str, names: list[str], first: np.ndarray, last: np.ndarray, date: dt.date) -> None:
    rows = np.flatnonzero(first >= 0)
    m = len(rows)
    month = dt.date(date.year, date.month, 1)
    ones = np.ones(m, dtype=np.int64)
    zeros = _decimals(np.zeros(m, dtype=np.int64))
    columns = {"address": [names[i] for i in rows]}
    for side in ("out", "in"):
        columns |= {
            f"{side}_n": ones, f"{side}_value_sum": zeros, f"{side}_value_sumsq": zeros, f"{side}_tx": ones,
            f"{side}_month_min": pa.array([month] * m, pa.date32()),
            f"{side}_month_max": pa.array([month] * m, pa.date32()),
            f"{side}_months": pa.array([[month]] * m, _DATES), f"{side}_first_time": first[rows],
            f"{side}_last_time": last[rows], f"{side}_times": ones,
            f"{side}_gap_sum": zeros, f"{side}_gap_sumsq": zeros,
        }
    _write(datasets.state_dir(where, "address_state", day), pa.table(columns), "state/address_state")


def _write_registry(where, days: list[str], seed: int, truth: Truth) -> None:
    champion = f"hgb-{days[0]}"
    _write_model(where, champion, days[0], True, None, seed)
    truth.champion = champion
    if len(days) > 1:
        truth.challenger = f"hgb-{days[1]}"
        _write_model(where, truth.challenger, days[1], False, champion, seed + 1)
    promotions = [{"version": champion, "trained_for": days[0], "reason": "first champion", "pr_auc": 0.9}]
    atomic.write_text_atomically(datasets.champion_file(where), json.dumps({"promotions": promotions}, indent=2))


# ---------------------------------------------------------------- the real run's schemas


def capture_schema(bucket: str, ds: str, names: list[str] | None = None) -> dict[str, list[list[str]]]:
    """The Parquet schema (name, Arrow type) of every dataset above (or of `names`), as the pipeline
    wrote it for `ds`."""
    where = datasets.Bucket(bucket)
    locations = {
        "predictions/address_scores": datasets.predictions_dir(where, ds),
        "predictions/address_profiles": datasets.profiles_dir(where, ds),
        **{f"features/{t}": datasets.features_dir(where, t, ds) for t in ("address_features", "address_labels",
                                                                           "block_pools")},
        "state/address_state": datasets.state_dir(where, "address_state", ds),
    }
    out = {}
    for name, location in sorted(locations.items()):
        if names is not None and name not in names:
            continue
        schema = pq.read_schema(atomic.files_or_fail(location, name)[0])
        out[name] = [[n, str(schema.field(n).type)] for n in schema.names]
    return out


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 4 or sys.argv[1] != "capture-schema":
        sys.exit("usage: python -m tools.synthetic_serving capture-schema <bucket> <day> [<dataset> …]\n"
                 "  (with datasets, e.g. predictions/address_scores: only those, printed over the\n"
                 "  other entries of tests/api/real_schema.json)")
    only = sys.argv[4:] or None
    captured = capture_schema(sys.argv[2], sys.argv[3], only)
    if only:
        captured = {**json.loads((Path(__file__).parents[1] / "tests/api/real_schema.json").read_text()), **captured}
    print(json.dumps(captured, indent=1))
