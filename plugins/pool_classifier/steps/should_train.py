"""should_train: whether a run retrains: the form's `retrain` (always / never), else the
cadence (`TrainConfig.retrain_every_days`: 1 in the demo, 7 is sensible in production), and
always when there is no champion yet to score with.

    python -m pool_classifier.steps.should_train --ds 2024-03-04
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from pool_classifier.model import registry
from pool_classifier.model.training import TrainConfig
from pool_classifier.targets import Target, current_target

# Days are counted from a Monday, so a weekly cadence trains on Mondays.
CADENCE_EPOCH = dt.date(1970, 1, 5)


def is_training_day(ds: str, every_days: int = TrainConfig.retrain_every_days) -> bool:
    """Whether the cadence trains on `ds` (every day for 1, Mondays for 7, …)."""
    if every_days < 1:
        raise ValueError(f"retrain_every_days must be ≥ 1, got {every_days}")
    return (dt.date.fromisoformat(ds) - CADENCE_EPOCH).days % every_days == 0


def needs_training(target: Target, ds: str, config: TrainConfig = TrainConfig()) -> bool:
    """A training day, or a day without any champion to score with."""
    if is_training_day(ds, config.retrain_every_days):
        return True
    return registry.champion_entry(registry.read_promotions(target), ds) is None


def should_train(target: Target, ds: str, asked: str = "auto") -> tuple[bool, str]:
    """(train?, why) for the form's `retrain` (auto / always / never)."""
    if asked != "auto":
        return asked == "always", f"retrain={asked} asked in the run's form"
    if needs_training(target, ds):
        return True, "retrain=auto: a training day (or no champion yet)"
    return False, "retrain=auto: not a training day of the cadence; scoring uses the champion"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Say whether a day's run retrains.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--retrain", default="auto", choices=("auto", "always", "never"))
    args = parser.parse_args(argv)
    train, why = should_train(current_target(), args.ds, args.retrain)
    print(f"{'train' if train else 'do not train'}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
