-- The scores gate (steps/check_scores.py): DuckDB SQL over one day's scores.
-- Sources: {{ scores }}, {{ features }} (read_parquet of the day's folders).

-- name: scores
SELECT count(*), count(DISTINCT address),
       count(*) FILTER (WHERE score IS NULL OR NOT (score BETWEEN 0 AND 1)),
       avg(score), quantile_cont(score, 0.5), quantile_cont(score, 0.9), quantile_cont(score, 0.99),
       count(*) FILTER (WHERE label)
FROM {{ scores }};

-- name: featured
SELECT count(*) FROM {{ features }};

-- name: unscored
SELECT count(*) FROM {{ features }} WHERE address NOT IN (SELECT address FROM {{ scores }});

-- name: histogram
-- Scores in {{ bins }} equal-width bins of [0, 1] (a score of 1 in the last bin).
SELECT least(CAST(floor(score * {{ bins }}) AS INTEGER), {{ bins - 1 }}) AS bin, count(*)
FROM {{ scores }} WHERE score BETWEEN 0 AND 1 GROUP BY 1;

-- name: predicted
SELECT count(*), count(*) FILTER (WHERE label) FROM {{ scores }};
