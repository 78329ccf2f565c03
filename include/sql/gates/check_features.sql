-- The features gate (steps/check_features.py): DuckDB SQL over one day's address features.
-- Source: {{ features }} (read_parquet of the day's folder).

-- name: columns
DESCRIBE SELECT * FROM {{ features }};

-- name: rows
SELECT count(*), count(DISTINCT address) FROM {{ features }};

-- name: feature
-- One feature's nulls, values out of range (or not finite), min and max. A month feature is
-- 0 (undefined) or a month within its range.
{% set col = '"' ~ name ~ '"' %}
SELECT count(*) FILTER (WHERE {{ col }} IS NULL),
       count(*) FILTER (WHERE
{%- if month %} ({{ col }} <> 0 AND ({{ col }} < {{ low }} OR {{ col }} > {{ high }}))
{%- else %}{% if low is not none %} {{ col }} < {{ low }} OR{% endif %}{% if high is not none %} {{ col }} > {{ high }} OR{% endif %}{% if flag %} {{ col }} NOT IN (0, 1) OR{% endif %}
{%- endif %}{% if month %} OR{% endif %} NOT isfinite(CAST({{ col }} AS DOUBLE))),
       min(CAST({{ col }} AS DOUBLE)), max(CAST({{ col }} AS DOUBLE))
FROM {{ features }};

-- name: side_flags_inconsistent
SELECT count(*) FROM {{ features }}
WHERE (has_received = 1) <> (total_tx_output_count > 0) OR (has_spent = 1) <> (total_tx_input_count > 0);
