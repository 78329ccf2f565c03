"""The per-address features: names, order and definitions, in one place.

The Spark job (`spark_jobs/build_features.py`) computes exactly these columns, training
and scoring read exactly these columns, and the README's feature table is checked
against this list by the tests.

Definitions (an "address" is the comma-joined `addresses` of one input or output; the
two sides are "output" = received, "input" = spent; months are `block_timestamp_month`
as Unix seconds of the month's first day; times are block timestamps in Unix seconds):

* Coinbase receipts are NOT flows here: they are what labels a pool address, so counting
  them in its features would leak the label (see `address_labels`). Features describe
  ordinary transactions only.
* A feature that is undefined for an address takes the value 0, and two indicators say
  which side exists: `has_received`, `has_spent` (receive-only addresses are kept, with
  every spend-side feature 0 and `has_spent` = 0). Undefined means: no flow on that side;
  a standard deviation of fewer than two values; an idle time with fewer than two
  distinct block times (mean) or three (standard deviation); a lag with a side missing.
* Values are integer satoshi; sums are exact DECIMAL(38, 0); means, standard deviations
  and per-month ratios are doubles.
"""
from __future__ import annotations

# name -> definition, in the order of the original 26 (then the additions).
FEATURES: dict[str, str] = {
    "output_month_min": "first month the address received",
    "output_month_max": "last month the address received",
    "input_month_min": "first month the address spent",
    "input_month_max": "last month the address spent",
    "output_active_time": "output_month_max − output_month_min (seconds)",
    "input_active_time": "input_month_max − input_month_min (seconds)",
    "io_max_lag": "output_month_max − input_month_max (seconds; 0 unless both sides exist)",
    "io_min_lag": "output_month_min − input_month_min (seconds; 0 unless both sides exist)",
    "output_active_months": "distinct months with receipts",
    "total_tx_output_count": "outputs paying the address",
    "total_tx_output_value": "sum of received values (satoshi, exact)",
    "mean_tx_output_value": "mean received value per output (satoshi)",
    "stddev_tx_output_value": "sample standard deviation of received values (satoshi)",
    "total_output_tx": "distinct transactions paying the address",
    "mean_monthly_output_value": "received value per active receiving month",
    "mean_monthly_output_count": "outputs received per active receiving month",
    "input_active_months": "distinct months with spends",
    "total_tx_input_count": "inputs spending from the address",
    "total_tx_input_value": "sum of spent values (satoshi, exact)",
    "mean_tx_input_value": "mean spent value per input (satoshi)",
    "stddev_tx_input_value": "sample standard deviation of spent values (satoshi)",
    "total_input_tx": "distinct transactions spending from the address",
    "mean_monthly_input_value": "spent value per active spending month",
    "mean_monthly_input_count": "inputs spent per active spending month",
    "mean_output_idle_time": "mean gap (s) between consecutive distinct receiving block times",
    "mean_input_idle_time": "mean gap (s) between consecutive distinct spending block times",
    "stddev_output_idle_time": "sample standard deviation of those receiving gaps (s)",
    "stddev_input_idle_time": "sample standard deviation of those spending gaps (s)",
    "has_received": "1 if the address received in an ordinary transaction, else 0",
    "has_spent": "1 if the address spent, else 0 (0 = receive-only)",
}

FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURES)
# The 26 features of the original classifier (the baseline's feature set).
ORIGINAL_FEATURES: tuple[str, ...] = FEATURE_COLUMNS[:26]
FEATURE_VERSION = "2"

# Beside the features (not one of them): the Unix time (UTC seconds) of the address's
# first ordinary flow, received or spent. Training splits on it (first activity before or
# after a cut-off); never null.
FIRST_SEEN = "first_seen_time"
