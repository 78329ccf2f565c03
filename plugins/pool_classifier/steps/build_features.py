"""build_features: run the `build_features` Spark job for one logical date.

The job itself is `spark_jobs/build_features.py`; this module holds its settings (read
by the job's argparse defaults too), builds its arguments (the same on every target) and
runs it in this process on the local Spark (`io/spark_runner.py`). The gcp target submits the
same job file and arguments as a Dataproc Serverless batch.

    python -m pool_classifier.steps.build_features --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass

from pool_classifier import datasets
from pool_classifier.io import spark_runner
from pool_classifier.targets import Target, current_target

TASK_ID = "build_features"


@dataclass(frozen=True)
class FeatureSettings:
    # Labels (spark_jobs/build_features.py `address_labels`, README "Labels"). A pool pays its
    # miners in the coinbase when its blocks have at least this many payout outputs on average
    # over the history (commitments left out): wallet pools pay one to three addresses of their
    # own per block (fee splits, rotation), direct pools (OCEAN, Eligius, Kano) tens to hundreds
    # of miners. 5 lies between with room on both sides, and a mean is a sum: incremental.
    miner_payout_min_outputs: float = 5.0
    # A miner paid directly is labelled `coinbase_miner` from 20 coinbase outputs of one pool on,
    # the original's threshold (fewer: a casual miner, left unlabelled)...
    min_coinbase_outputs: int = 20
    # ...while a wallet pool's coinbase pays the pool itself: one output is the pool's word that
    # the address is its own (`pool_wallet`). Between 1 and min_coinbase_outputs.
    min_wallet_coinbase_outputs: int = 1
    # ...and took about 100 other addresses per pool address.
    negatives_per_positive: float = 100
    # Seeds the training sample: the same sample on every run.
    seed: int = 42
    # The state is a base snapshot plus one delta per day since: after this many deltas the
    # day compacts them into a new base (an O(history) write, once a week instead of daily).
    compact_every_days: int = 7
    # Retention: a compaction removes the states older than the base before it (their bases,
    # deltas, manifests, receipts), so storage stays about two bases plus a week of deltas;
    # any day after that base can still be re-run. Older days: bootstrap (docs/operations.md).


SETTINGS = FeatureSettings()


def job_args(where: datasets.HasBucket, ds: str, pools_uri: str, settings: FeatureSettings = SETTINGS) -> list[str]:
    """Arguments of spark_jobs/build_features.py for day `ds`."""
    args = ["--ds", ds, "--bucket", where.bucket, "--pools", pools_uri]
    for name, value in sorted(dataclasses.asdict(settings).items()):
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def build_features(target: Target, ds: str, **overrides) -> str:
    """Run build_features for `ds` (needs the state of the day before, unless it is the first)."""
    settings = dataclasses.replace(SETTINGS, **overrides)
    args = job_args(target, ds, str(datasets.POOLS_FILE), settings)
    return spark_runner.run(target, TASK_ID, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build per-address features for one day.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--min-coinbase-outputs", type=int, default=SETTINGS.min_coinbase_outputs)
    args = parser.parse_args(argv)
    print(build_features(current_target(), args.ds, min_coinbase_outputs=args.min_coinbase_outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
