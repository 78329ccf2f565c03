"""Storage and engines: atomic writes, Spark I/O and runner, SQL, the local warehouse, the bucket mirror, cost records."""
