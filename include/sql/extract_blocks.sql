-- extract_blocks: one UTC day of blocks, the columns the labels and quality checks need.
-- Partition-pruned: `timestamp_month` is the partition column of `blocks`; the filter on
-- it is a constant, so BigQuery reads one month of the table, not its whole history.
SELECT
  `hash` AS block_hash,
  number AS block_number,
  `timestamp` AS block_timestamp,
  timestamp_month AS block_timestamp_month,
  coinbase_param,
  transaction_count
FROM `bigquery-public-data.crypto_bitcoin.blocks`
WHERE timestamp_month = DATE_TRUNC(DATE '{{ ds }}', MONTH)
  AND DATE(`timestamp`) = DATE '{{ ds }}'
