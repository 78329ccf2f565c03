-- The extract gate (steps/check_extract.py): DuckDB SQL over one day's extract files.
-- Sources: {{ blocks }}, {{ outputs }}, {{ inputs }} (read_parquet of the day's folders).

-- name: blocks
SELECT count(*), count(DISTINCT block_number), count(DISTINCT block_hash),
       min(block_number), max(block_number), coalesce(sum(transaction_count), 0)
FROM {{ blocks }};

-- name: block_times
SELECT DISTINCT block_number, block_timestamp FROM {{ blocks }} ORDER BY 1;

-- name: output_keys
SELECT count(DISTINCT (block_number, transaction_hash)), count(*),
       count(DISTINCT (block_number, transaction_hash, output_index))
FROM {{ outputs }};

-- name: input_keys
SELECT count(*), count(DISTINCT (block_number, transaction_hash, input_index)) FROM {{ inputs }};

-- name: blocks_with_wrong_count
SELECT count(*)
FROM {{ blocks }} AS b
LEFT JOIN (SELECT block_number, count(DISTINCT transaction_hash) AS n FROM {{ outputs }} GROUP BY 1) AS o
    USING (block_number)
WHERE coalesce(o.n, 0) <> coalesce(b.transaction_count, -1);

-- name: orphans
SELECT count(*)
FROM (SELECT block_number FROM {{ outputs }} UNION ALL SELECT block_number FROM {{ inputs }})
WHERE block_number NOT IN (SELECT block_number FROM {{ blocks }});

-- name: repeated_hashes
-- A transaction hash in two blocks of the day, the BIP30 pair excepted.
SELECT count(*)
FROM (SELECT transaction_hash FROM {{ outputs }}
      WHERE transaction_hash NOT IN ({% for h in known_duplicates %}'{{ h }}'{% if not loop.last %}, {% endif %}{% else %}''{% endfor %})
      GROUP BY 1 HAVING count(DISTINCT block_number) > 1);

-- name: bad_output_values
SELECT count(*) FILTER (WHERE value IS NULL), count(*) FILTER (WHERE value < 0),
       count(*) FILTER (WHERE value > {{ max_money }})
FROM {{ outputs }};

-- name: bad_input_values
SELECT count(*) FILTER (WHERE value IS NULL), count(*) FILTER (WHERE value < 0),
       count(*) FILTER (WHERE value > {{ max_money }})
FROM {{ inputs }};

-- name: last_block
SELECT max(block_number) FROM {{ source }};
