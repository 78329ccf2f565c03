-- address_features: the per-address features of `spark_jobs/build_features.py`, in one
-- BigQuery query over crypto_bitcoin, for every day from {{ first_day }} to {{ ds }}.
--
-- An independent second implementation: the tests run it (through sqlglot and DuckDB) on
-- the real blocks and on generated days and require the Spark job's values, integers and
-- decimals exactly, doubles to 1e-9 relative. It is also how to compute the features
-- inside BigQuery. Definitions: plugins/pool_classifier/feature_spec.py and the README.
--
-- Cost: it reads the `inputs` and `outputs` columns of every month from {{ first_day }} to
-- {{ ds }} (filtered on the partition column `block_timestamp_month`); over the whole
-- history that is the whole table, which is why the daily pipeline keeps a state instead.
--
-- Exactness: satoshi sums and sums of squares are BIGNUMERIC (a squared output overflows
-- INT64); a standard deviation is sqrt((n·Σx² − (Σx)²) / (n(n−1))) with that numerator
-- exact, so two engines agree to the last bits of the final division.
WITH days AS (
  SELECT *
  FROM `bigquery-public-data.crypto_bitcoin.transactions`
  WHERE block_timestamp_month BETWEEN DATE_TRUNC(DATE '{{ first_day }}', MONTH)
                                  AND DATE_TRUNC(DATE '{{ ds }}', MONTH)
    AND DATE(block_timestamp) BETWEEN DATE '{{ first_day }}' AND DATE '{{ ds }}'
),
-- Ordinary flows only: coinbase receipts are what labels a pool address, so they must
-- not feed its features. Flows with no address are left out.
flows AS (
  SELECT 'output' AS side, ARRAY_TO_STRING(o.addresses, ',') AS address, d.`hash` AS tx,
    d.block_timestamp_month AS month, UNIX_SECONDS(d.block_timestamp) AS t,
    CAST(o.value AS BIGNUMERIC) AS value
  FROM days AS d, UNNEST(d.outputs) AS o
  WHERE NOT d.is_coinbase
  UNION ALL
  SELECT 'input' AS side, ARRAY_TO_STRING(i.addresses, ','), d.`hash`,
    d.block_timestamp_month, UNIX_SECONDS(d.block_timestamp), CAST(i.value AS BIGNUMERIC)
  FROM days AS d, UNNEST(d.inputs) AS i
),
addressed AS (
  SELECT * FROM flows WHERE address IS NOT NULL AND address != ''
),
value_partials AS (
  SELECT side, address,
    COUNT(*) AS n,
    SUM(value) AS value_sum,
    SUM(value * value) AS value_sumsq,
    COUNT(DISTINCT tx) AS tx,
    MIN(month) AS month_min,
    MAX(month) AS month_max,
    COUNT(DISTINCT month) AS months
  FROM addressed
  GROUP BY side, address
),
distinct_times AS (
  SELECT DISTINCT side, address, t FROM addressed
),
gaps AS (
  SELECT side, address, t,
    CAST(t - LAG(t) OVER (PARTITION BY side, address ORDER BY t) AS BIGNUMERIC) AS gap
  FROM distinct_times
),
time_partials AS (
  SELECT side, address,
    COUNT(*) AS times,
    MIN(t) AS first_time,
    COALESCE(SUM(gap), 0) AS gap_sum,
    COALESCE(SUM(gap * gap), 0) AS gap_sumsq
  FROM gaps
  GROUP BY side, address
),
sides AS (
  SELECT v.side, v.address, p.first_time,
    UNIX_DATE(v.month_min) * 86400 AS month_min,
    UNIX_DATE(v.month_max) * 86400 AS month_max,
    v.months,
    v.n,
    v.value_sum,
    CAST(v.value_sum AS FLOAT64) / CAST(v.n AS FLOAT64) AS mean_value,
    IF(v.n >= 2,
       SQRT(CAST(v.n * v.value_sumsq - v.value_sum * v.value_sum AS FLOAT64)
            / (CAST(v.n AS FLOAT64) * CAST(v.n - 1 AS FLOAT64))),
       0) AS stddev_value,
    v.tx,
    CAST(v.value_sum AS FLOAT64) / CAST(v.months AS FLOAT64) AS monthly_value,
    CAST(v.n AS FLOAT64) / CAST(v.months AS FLOAT64) AS monthly_count,
    IF(p.times >= 2, CAST(p.gap_sum AS FLOAT64) / CAST(p.times - 1 AS FLOAT64), 0) AS mean_idle,
    IF(p.times >= 3,
       SQRT(CAST((p.times - 1) * p.gap_sumsq - p.gap_sum * p.gap_sum AS FLOAT64)
            / (CAST(p.times - 1 AS FLOAT64) * CAST(p.times - 2 AS FLOAT64))),
       0) AS stddev_idle
  FROM value_partials AS v
  JOIN time_partials AS p ON p.side = v.side AND p.address = v.address
),
received AS (SELECT * FROM sides WHERE side = 'output'),
spent AS (SELECT * FROM sides WHERE side = 'input')
SELECT
  COALESCE(r.address, s.address) AS address,
  COALESCE(r.month_min, 0) AS output_month_min,
  COALESCE(r.month_max, 0) AS output_month_max,
  COALESCE(s.month_min, 0) AS input_month_min,
  COALESCE(s.month_max, 0) AS input_month_max,
  COALESCE(r.month_max - r.month_min, 0) AS output_active_time,
  COALESCE(s.month_max - s.month_min, 0) AS input_active_time,
  COALESCE(r.month_max - s.month_max, 0) AS io_max_lag,
  COALESCE(r.month_min - s.month_min, 0) AS io_min_lag,
  COALESCE(r.months, 0) AS output_active_months,
  COALESCE(r.n, 0) AS total_tx_output_count,
  COALESCE(r.value_sum, 0) AS total_tx_output_value,
  COALESCE(r.mean_value, 0) AS mean_tx_output_value,
  COALESCE(r.stddev_value, 0) AS stddev_tx_output_value,
  COALESCE(r.tx, 0) AS total_output_tx,
  COALESCE(r.monthly_value, 0) AS mean_monthly_output_value,
  COALESCE(r.monthly_count, 0) AS mean_monthly_output_count,
  COALESCE(s.months, 0) AS input_active_months,
  COALESCE(s.n, 0) AS total_tx_input_count,
  COALESCE(s.value_sum, 0) AS total_tx_input_value,
  COALESCE(s.mean_value, 0) AS mean_tx_input_value,
  COALESCE(s.stddev_value, 0) AS stddev_tx_input_value,
  COALESCE(s.tx, 0) AS total_input_tx,
  COALESCE(s.monthly_value, 0) AS mean_monthly_input_value,
  COALESCE(s.monthly_count, 0) AS mean_monthly_input_count,
  COALESCE(r.mean_idle, 0) AS mean_output_idle_time,
  COALESCE(s.mean_idle, 0) AS mean_input_idle_time,
  COALESCE(r.stddev_idle, 0) AS stddev_output_idle_time,
  COALESCE(s.stddev_idle, 0) AS stddev_input_idle_time,
  IF(r.address IS NULL, 0, 1) AS has_received,
  IF(s.address IS NULL, 0, 1) AS has_spent,
  LEAST(COALESCE(r.first_time, s.first_time), COALESCE(s.first_time, r.first_time)) AS first_seen_time
FROM received AS r
FULL OUTER JOIN spent AS s ON s.address = r.address
