"""features: run the `build_features` Spark job for one logical date.

The job itself is `spark_jobs/build_features.py`; this module only says where its
inputs and outputs are and runs it on the target's Spark.

    python -m pool_classifier.steps.build_features --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import sys

from pool_classifier.io import spark_runner as spark_submit
from pool_classifier.targets import POOLS_FILE, Target, current_target

# The original labelled an address a pool address from 20 coinbase outputs on, and took
# about 100 other addresses per pool address.
SETTINGS = {"min_coinbase_outputs": 20, "negatives_per_positive": 100, "seed": 42}


def build_features(target: Target, ds: str, **overrides) -> str:
    """Run build_features for `ds` (needs the state of the day before, unless it is the first)."""
    if target.spark_runner != "local":
        raise NotImplementedError(
            f"build_features runs Spark locally; target {target.name!r} submits a "
            f"{target.spark_runner} batch through its own operator."
        )
    unknown = set(overrides) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown build_features settings {sorted(unknown)}; known: {sorted(SETTINGS)}")
    args = spark_submit.features_job_args(target, ds, str(POOLS_FILE), {**SETTINGS, **overrides})
    return spark_submit.run_local(target, spark_submit.FEATURES_JOB, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build per-address features for one day.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--min-coinbase-outputs", type=int, default=SETTINGS["min_coinbase_outputs"])
    args = parser.parse_args(argv)
    print(build_features(current_target(), args.ds, min_coinbase_outputs=args.min_coinbase_outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
