"""check_features: the data-quality gate after build_features. Every feature of the day's
active addresses present, no nulls, every value finite and in its range, the side flags
consistent with the counts. SQL: `include/sql/gates/check_features.sql`; shared parts:
`quality_gate.py`.

    python -m pool_classifier.steps.check_features --ds 2024-03-01
"""
from __future__ import annotations

import datetime as dt
import sys

from pool_classifier import datasets
from pool_classifier.model.feature_spec import FEATURE_COLUMNS
from pool_classifier.steps import quality_gate as gate
from pool_classifier.targets import Target

# (low, high) per feature; None = unbounded. Month columns are checked apart (0 or a month).
_MONTHS = ("output_month_min", "output_month_max", "input_month_min", "input_month_max")
_FLAGS = ("has_received", "has_spent")


def _feature_ranges(ds: str) -> dict[str, tuple[float | None, float | None]]:
    month_end = dt.datetime.fromisoformat(ds).replace(day=1, tzinfo=dt.timezone.utc).timestamp()
    day_end = (dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)).timestamp()
    span = month_end - gate.GENESIS_MONTH_SECONDS   # longest possible distance between two months
    since_genesis = day_end - gate.GENESIS_MONTH_SECONDS
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for name in FEATURE_COLUMNS:
        if name in _MONTHS:
            ranges[name] = (gate.GENESIS_MONTH_SECONDS, month_end)   # or 0 when undefined
        elif name in _FLAGS:
            ranges[name] = (0, 1)
        elif name.endswith("_active_time"):
            ranges[name] = (0, span)
        elif name.startswith("io_"):
            ranges[name] = (-span, span)
        elif name.endswith("_idle_time"):
            ranges[name] = (0, since_genesis)
        elif name.startswith(("mean_tx_", "stddev_tx_")):
            ranges[name] = (0, gate.MAX_MONEY_SATOSHI)
        else:                                                  # counts, sums, per-month ratios
            ranges[name] = (0, None)
    return ranges


def check_features(target: Target, ds: str, settings: gate.GateSettings = gate.SETTINGS) -> dict:
    """After build_features: every feature present, no nulls, every value in its range."""
    source = {"features": gate.parquet(datasets.features_dir(target, "address_features", ds))}
    con = gate.connect()
    try:
        columns = [r[0] for r in gate.query(con, "features", "columns", **source).fetchall()]
        missing = [c for c in FEATURE_COLUMNS if c not in columns]
        present = [c for c in FEATURE_COLUMNS if c in columns]
        rows, addresses = gate.query(con, "features", "rows", **source).fetchone()
        ranges = _feature_ranges(ds)
        per_feature = {}
        for name in present:
            low, high = ranges[name]
            nulls, out_of_range, lo_seen, hi_seen = gate.query(
                con, "features", "feature", **source, name=name, low=low, high=high,
                month=name in _MONTHS, flag=name in _FLAGS,
            ).fetchone()
            per_feature[name] = {
                "null_rate": nulls / rows if rows else 0.0,
                "nulls": nulls,
                "out_of_range": out_of_range,
                "min": lo_seen,
                "max": hi_seen,
                "range": [low, high],
            }
        inconsistent = 0
        if not missing:
            inconsistent = gate.query(con, "features", "side_flags_inconsistent", **source).fetchone()[0]
    finally:
        con.close()

    checks = [
        gate.Check("rows_present", rows > 0, "> 0 featured addresses", rows),
        gate.Check("addresses_unique", addresses == rows, f"{rows} distinct addresses", addresses),
        gate.Check("feature_columns", not missing, f"all {len(FEATURE_COLUMNS)} feature columns",
                   f"missing {missing}" if missing else "all present"),
    ]
    for name, f in per_feature.items():
        checks.append(gate.Check(
            f"null_rate[{name}]", f["null_rate"] <= settings.max_feature_null_rate,
            f"<= {settings.max_feature_null_rate}", round(f["null_rate"], 6), f"{f['nulls']} of {rows} rows",
        ))
        low, high = f["range"]
        bounds = f"[{low}, {high if high is not None else '∞'}]"
        if name in _MONTHS:
            bounds = f"0 or a month in {bounds}"
        checks.append(gate.Check(
            f"range[{name}]", f["out_of_range"] == 0, f"0 values outside {bounds}, all finite",
            f["out_of_range"], f"min {f['min']}, max {f['max']}",
        ))
    checks.append(gate.Check(
        "side_flags_consistent", inconsistent == 0,
        "0 addresses whose has_received/has_spent disagree with their counts", inconsistent,
    ))
    figures = {"rows": rows, "features": per_feature}
    return gate.finish(target, "features", ds, checks, figures, settings)



def main(argv: list[str] | None = None) -> int:
    return gate.gate_main("features", argv)


if __name__ == "__main__":
    sys.exit(main())
