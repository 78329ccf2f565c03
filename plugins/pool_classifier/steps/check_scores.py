"""check_scores: the data-quality gate after score_addresses. Every featured address scored
once with a score in [0, 1], and the score distribution compared with the day before
(population stability, and the share predicted to be pool addresses). SQL:
`include/sql/gates/check_scores.sql`; shared parts: `quality_gate.py`.

    python -m pool_classifier.steps.check_scores --ds 2024-03-01
"""
from __future__ import annotations

import math
import sys

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps.quality_gate import SETTINGS, Check, GateSettings, connect, finish, gate_main, parquet, query
from pool_classifier.targets import Target


def _score_histogram(con, scores: str, bins: int) -> list[int]:
    counts = dict(query(con, "scores", "histogram", scores=scores, bins=bins).fetchall())
    return [int(counts.get(i, 0)) for i in range(bins)]


def population_stability_index(expected: list[int], observed: list[int]) -> float:
    """PSI between two histograms over the same bins (empty bins get half a count)."""
    n_e, n_o = sum(expected), sum(observed)
    if not n_e or not n_o:
        return 0.0
    psi = 0.0
    for e, o in zip(expected, observed):
        pe, po = max(e, 0.5) / n_e, max(o, 0.5) / n_o
        psi += (po - pe) * math.log(po / pe)
    return psi


def check_scores(target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """After score_addresses: valid scores for every featured address, no shift from the day before."""
    sources = {"scores": parquet(datasets.predictions_dir(target, ds)),
               "features": parquet(datasets.features_dir(target, "address_features", ds))}
    con = connect()
    try:
        rows, addresses, invalid, mean, p50, p90, p99, predicted = query(con, "scores", "scores", **sources).fetchone()
        featured = query(con, "scores", "featured", **sources).fetchone()[0]
        unscored = query(con, "scores", "unscored", **sources).fetchone()[0]
        histogram = _score_histogram(con, sources["scores"], settings.score_bins)
        previous = None
        day_before = datasets.day_before(ds)
        previous_dir = datasets.predictions_dir(target, day_before)
        if atomic.exists(previous_dir):
            prev_scores = parquet(previous_dir)
            prev_rows, prev_predicted = query(con, "scores", "predicted", scores=prev_scores).fetchone()
            previous = {
                "ds": day_before,
                "rows": prev_rows,
                "predicted_pools": prev_predicted,
                "histogram": _score_histogram(con, prev_scores, settings.score_bins),
            }
    finally:
        con.close()

    share = predicted / rows if rows else 0.0
    checks = [
        Check("rows_present", rows > 0, "> 0 scored addresses", rows),
        Check("addresses_unique", addresses == rows, f"{rows} distinct addresses", addresses),
        Check("every_featured_address_scored", unscored == 0 and rows == featured,
              f"{featured} scored addresses (the day's featured addresses)", rows,
              f"{unscored} featured addresses without a score"),
        Check("scores_valid", invalid == 0, "0 scores null or outside [0, 1]", invalid),
    ]
    figures = {
        "rows": rows,
        "predicted_pools": predicted,
        "predicted_pool_share": share,
        "score_mean": mean,
        "score_p50": p50,
        "score_p90": p90,
        "score_p99": p99,
        "histogram": histogram,
        "previous_day": previous,
    }
    if previous is None:
        checks.append(Check("score_shift", True, "a day before to compare with", "none",
                            "first scored day: this day is the baseline"))
    else:
        psi = population_stability_index(previous["histogram"], histogram)
        figures["psi"] = psi
        checks.append(Check(
            "score_psi", psi <= settings.max_score_psi, f"<= {settings.max_score_psi}", round(psi, 4),
            f"scores of {ds} against {previous['ds']}",
        ))
        prev_share = previous["predicted_pools"] / previous["rows"] if previous["rows"] else 0.0
        ratio = _share_ratio(share, prev_share, rows, previous["rows"])
        figures["predicted_pool_share_ratio"] = ratio
        limit = settings.max_predicted_pool_share_ratio
        checks.append(Check(
            "predicted_pool_share", ratio <= limit, f"within {limit}x of the day before",
            f"{ratio:.2f}x", f"{share:.4%} of addresses vs {prev_share:.4%} on {previous['ds']}",
        ))
    return finish(target, "scores", ds, checks, figures, settings)


def _share_ratio(share: float, previous: float, rows: int, previous_rows: int) -> float:
    """How many times larger one share is than the other (≥ 1); one address of slack on each side,
    so that 0 against 1 pool address is a ratio, not an infinity."""
    a = (share * rows + 1) / (rows + 1)
    b = (previous * previous_rows + 1) / (previous_rows + 1)
    return max(a, b) / min(a, b)


def main(argv: list[str] | None = None) -> int:
    return gate_main("scores", argv)


if __name__ == "__main__":
    sys.exit(main())
