-- extract_outputs: one row per transaction output of one UTC day (who received what).
-- Partition-pruned on `block_timestamp_month`; only the `outputs` nested column and a few
-- scalars are read. An "address" is the comma-joined `addresses` of one output, so a
-- bare-multisig output is one address string. Values are integer satoshi: NUMERIC cast
-- to INT64 is exact (the largest output is far below 2^63). `block_hash` keys the coinbase
-- outputs to their block (build_features' attribution), as the blocks extract is keyed.
-- The days from `first_day` to `ds` (default: `ds` alone, the daily extract; a range is the
-- bootstrap's history export, steps/bootstrap_state.py).
{%- set first_day = first_day | default(ds) %}
SELECT
  t.`hash` AS transaction_hash,
  t.block_hash,
  t.block_number,
  t.block_timestamp,
  t.block_timestamp_month,
  t.is_coinbase,
  o.index AS output_index,
  o.type AS output_type,
  ARRAY_TO_STRING(o.addresses, ',') AS address,
  CAST(o.value AS INT64) AS value
FROM `bigquery-public-data.crypto_bitcoin.transactions` AS t,
  UNNEST(t.outputs) AS o
WHERE t.block_timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH) AND DATE_TRUNC(DATE '{{ ds }}', MONTH)
  AND DATE(t.block_timestamp) BETWEEN DATE '{{ first_day }}' AND DATE '{{ ds }}'
