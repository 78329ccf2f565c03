"""A day of feature files for model tests: a learnable signal, first-seen times, two pools."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN

START = 1_709_251_200  # 2024-03-01 00:00 UTC
# Exact satoshi sums, DECIMAL(38,0) as the features job writes them.
SATOSHI_SUMS = ("total_tx_output_value", "total_tx_input_value")


def feature_rows(n_pools: int = 60, n_others: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Pool addresses spend often in many small payouts; everything else is noise.

    Addresses are first seen over two days, pools and others mixed in time.
    """
    rng = np.random.default_rng(seed)
    n = n_pools + n_others
    frame = pd.DataFrame({c: rng.normal(0, 1, n) for c in FEATURE_COLUMNS})
    is_pool = np.arange(n) < n_pools
    frame["total_tx_input_count"] += np.where(is_pool, 4.0, 0.0)
    frame["mean_tx_output_value"] += np.where(is_pool, -2.0, 0.0)
    for name in SATOSHI_SUMS:
        frame[name] = [Decimal(int(v)) for v in rng.integers(0, 2_100_000_000_000_000, n)]
    frame.insert(0, "address", [f"addr{i:05d}" for i in range(n)])
    frame[FIRST_SEEN] = START + rng.integers(0, 2 * 86400, n)
    return frame


def write_parquet(df: pd.DataFrame, file: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name in SATOSHI_SUMS:
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).cast(pa.decimal128(38, 0)))
    pq.write_table(table, file)


def write_day(target, ds: str, frame: pd.DataFrame | None = None, n_pools: int = 60, n_others: int = 3000,
              seed: int = 0, n_miners: int = 0) -> pd.DataFrame:
    """Write the day's address_features, address_labels and training_features (all rows).

    The first `n_pools` addresses are pool wallets (AntPool and F2Pool alternately; the
    original's rule labels the AntPool ones), the next `n_miners` (taken from the others, so
    without the pools' signal) coinbase miners of OCEAN, which the original's rule labels too.
    """
    frame = feature_rows(n_pools, n_others, seed) if frame is None else frame
    pools = frame["address"].iloc[:n_pools]
    wallets = pd.DataFrame({
        "address": pools,
        "pool_id": 44,
        "pool_name": np.where(np.arange(n_pools) % 2, "AntPool", "F2Pool"),
        "coinbase_outputs": 25,
        "label_source": "coinbase",
        "label_kind": "pool_wallet",
        "original_rule": np.arange(n_pools) % 2 == 1,
    })
    miners = pd.DataFrame({
        "address": frame["address"].iloc[n_pools:n_pools + n_miners],
        "pool_id": 142, "pool_name": "OCEAN", "coinbase_outputs": 30, "label_source": "coinbase",
        "label_kind": "coinbase_miner", "original_rule": True,
    })
    labels = pd.concat([wallets, miners], ignore_index=True) if n_miners else wallets
    columns = ["address", "pool_id", "pool_name", "label_source", "label_kind", "original_rule"]
    training = frame.merge(labels[columns], on="address", how="left")
    training["label"] = training["pool_name"].notna().astype("int32")
    training["original_label"] = training.pop("original_rule").eq(True).astype("int32")
    for table, df in (("address_features", frame), ("address_labels", labels), ("training_features", training)):
        with atomic.write_dir(datasets.features_dir(target, table, ds)) as folder:
            write_parquet(df, folder / "part-00000.parquet")
    return frame
