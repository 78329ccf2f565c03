-- extract_inputs: one row per transaction input of one UTC day (who spent what).
-- Partition-pruned on `block_timestamp_month`; only the `inputs` nested column and a few
-- scalars are read. Inputs are enriched in crypto_bitcoin: address and value of the
-- spent output are on the input. Coinbase transactions have no inputs.
-- The days from `first_day` to `ds` (default: `ds` alone, the daily extract; a range is the
-- bootstrap's history export, steps/bootstrap_state.py).
{%- set first_day = first_day | default(ds) %}
SELECT
  t.`hash` AS transaction_hash,
  t.block_number,
  t.block_timestamp,
  t.block_timestamp_month,
  i.index AS input_index,
  i.spent_transaction_hash,
  i.spent_output_index,
  ARRAY_TO_STRING(i.addresses, ',') AS address,
  CAST(i.value AS INT64) AS value
FROM `bigquery-public-data.crypto_bitcoin.transactions` AS t,
  UNNEST(t.inputs) AS i
WHERE t.block_timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH) AND DATE_TRUNC(DATE '{{ ds }}', MONTH)
  AND DATE(t.block_timestamp) BETWEEN DATE '{{ first_day }}' AND DATE '{{ ds }}'
