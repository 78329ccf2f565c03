"""train_model on Dataproc Serverless (the gcp target's batch of the `train_model` step): the
local training step, `pool_classifier.steps.train_model.train_model`, run on the batch's driver
over a copy of what it reads from the bucket (the day's training set, the registry's
champion); the model version, its report and `champion.json` are written back to
`<bucket>/models/`, same layout as local.

It is a Dataproc batch, not a Spark computation (the training set is a few MB): it runs on
the runtime that scores, because the registry refuses a model pickled under other library
versions than the ones loading it, and the scoring batch runs on this runtime.

    spark-submit train_model.py --ds 2024-03-01 --bucket gs://<bucket>
"""
from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the pool-address classifier for a day, registry in GCS.")
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD (UTC)")
    parser.add_argument("--bucket", required=True, help="gs://<bucket> holding features/ and models/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    import logging

    from pool_classifier.errors import DATA_ERROR_EXIT_CODE
    from pool_classifier.io.bucket_mirror import CloudStorage, train_in_copy
    from pool_classifier.model.training import TrainingDataError
    from pool_classifier.targets.gcp import split_gcs_uri, target_for_bucket

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    remote = target_for_bucket(args.bucket)
    try:
        result = train_in_copy(CloudStorage(split_gcs_uri(remote.bucket)[0]), remote, args.ds)
    except TrainingDataError as exc:
        print(f"TrainingDataError: {exc}", file=sys.stderr)
        return DATA_ERROR_EXIT_CODE
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
