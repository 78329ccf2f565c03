-- extract_blocks: one UTC day of blocks, the columns the labels and quality checks need.
-- Partition-pruned: `timestamp_month` is the partition column of `blocks`; the filter on
-- it is a constant, so BigQuery reads only the months of the range (one for a day), not the
-- whole history. The table is not clustered: nothing prunes below a month (docs/gcp.md).
-- The days from `first_day` to `ds` (default: `ds` alone, the daily extract; a range is the
-- bootstrap's history export, steps/bootstrap_state.py).
{%- set first_day = first_day | default(ds) %}
SELECT
  `hash` AS block_hash,
  number AS block_number,
  `timestamp` AS block_timestamp,
  timestamp_month AS block_timestamp_month,
  coinbase_param,
  transaction_count
FROM `bigquery-public-data.crypto_bitcoin.blocks`
WHERE timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH) AND DATE_TRUNC(DATE '{{ ds }}', MONTH)
  AND DATE(`timestamp`) BETWEEN DATE '{{ first_day }}' AND DATE '{{ ds }}'
