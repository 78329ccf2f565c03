-- hourly_blocks: the blocks of a window of hours [start, end), for pool_activity_hourly.
-- `blocks` is small (~4,400 rows a month) and partitioned by `timestamp_month`: the filter on
-- it reads the window's month(s) only, ~1.3 MB, billed BigQuery's 10 MB minimum (docs/gcp.md).
-- `start`/`end` are UTC timestamps 'YYYY-MM-DD HH:MM:SS'; `first_day`/`last_day` their days.
SELECT
  `hash` AS block_hash,
  number AS block_number,
  `timestamp` AS block_timestamp,
  coinbase_param,
  transaction_count
FROM `bigquery-public-data.crypto_bitcoin.blocks`
WHERE timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH) AND DATE_TRUNC(DATE '{{ last_day }}', MONTH)
  AND `timestamp` >= TIMESTAMP '{{ start }}'
  AND `timestamp` < TIMESTAMP '{{ end }}'
