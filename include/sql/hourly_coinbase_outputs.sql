-- hourly_coinbase_outputs: the coinbase outputs of the blocks of a window of hours [start, end)
-- (payout-address attribution, and the fees: coinbase value − subsidy).
-- Run by the local target only. On BigQuery `transactions` is partitioned by month and not
-- clustered: `is_coinbase` and the time filter prune nothing inside the month, so this query
-- would bill the month's `is_coinbase`, `block_number`, `block_timestamp`, `outputs.addresses`,
-- `outputs.value` so far (~1.1 GB on an average day, every hour: docs/gcp.md, "The hourly DAG").
SELECT
  t.block_hash,
  t.block_number,
  o.index AS output_index,
  ARRAY_TO_STRING(o.addresses, ',') AS address,
  CAST(o.value AS INT64) AS value
FROM `bigquery-public-data.crypto_bitcoin.transactions` AS t,
  UNNEST(t.outputs) AS o
WHERE t.block_timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH) AND DATE_TRUNC(DATE '{{ last_day }}', MONTH)
  AND t.is_coinbase
  AND t.block_timestamp >= TIMESTAMP '{{ start }}'
  AND t.block_timestamp < TIMESTAMP '{{ end }}'
