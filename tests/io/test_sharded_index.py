"""The sharded document index (the gcp serving store), on the object-store double with real files:
every document comes back as the memory-mapped index gives it, each lookup is at most one ranged
GET of one bucket, an absent address is None, and a wrong directory is refused on open."""
from __future__ import annotations

import io
import json
import random

import numpy as np
import pyarrow as pa
import pytest

from pool_classifier.io import doc_index, sharded_index, versioned


def _docs(n: int, seed: int = 7) -> tuple[list[str], pa.Array]:
    rng = random.Random(seed)
    addresses = [f"bc1q{rng.getrandbits(128):032x}" for _ in range(n)]
    # Documents of uneven sizes, non-ASCII included (the index stores bytes, not characters).
    docs = [json.dumps({"address": a, "score": rng.random(), "pad": "é" * rng.randrange(0, 300)}) for a in addresses]
    return addresses, pa.array(docs, pa.string())


@pytest.mark.parametrize("shard_bits,bucket_bits", [(0, 0), (2, 6), (3, 10), (None, None)])
def test_every_document_equals_the_memory_mapped_index_and_costs_one_ranged_read(tmp_path, shard_bits, bucket_bits):
    addresses, docs = _docs(2_000)
    fs = versioned.ObjectStoreFS(tmp_path / "store")
    folder = fs.uri("serving/dt=2024-03-01/v=1")
    index = sharded_index.write(fs, folder, addresses, docs, shard_bits=shard_bits, bucket_bits=bucket_bits)
    assert index["documents"] == 2_000
    # Each bucket compressed: the objects hold less than the documents, and exactly what index.json says.
    shard_sizes = [len(fs.read_bytes(fs.join(folder, "shards", sharded_index.shard_name(s)))) for s in range(index["shards"])]
    assert sum(shard_sizes) == index["stored_bytes"] < index["bytes"] / 2
    assert sorted(fs.list_dir(fs.join(folder, "shards"))) == sorted(
        [sharded_index.shard_name(s) for s in range(index["shards"])] + ["directory.npy", "index.json"])
    (tmp_path / "mmap").mkdir()
    doc_index.write(tmp_path / "mmap", addresses, docs)
    local = doc_index.DocIndex(tmp_path / "mmap")

    sharded = sharded_index.ShardedIndex(fs, folder)
    assert len(sharded) == len(local) == 2_000
    before = fs.range_reads
    for address in addresses[:300]:
        assert sharded.get(address, json.loads) == local.get(address, json.loads)
    assert fs.range_reads - before == 300  # one ranged GET a lookup, never a whole shard
    if bucket_bits:
        assert fs.range_bytes / fs.range_reads < index["bytes"] / 8
    assert sharded.get_many(addresses, json.loads) == local.get_many(addresses, json.loads)
    missing = [f"bc1qmissing{i}" for i in range(50)]
    assert sharded.get_many(missing, json.loads) == {}
    assert all(sharded.get(a, json.loads) is None for a in missing)


def test_two_addresses_in_one_bucket_are_told_apart_by_their_address(tmp_path):
    addresses, docs = _docs(500)
    fs = versioned.LocalFS()
    sharded_index.write(fs, str(tmp_path), addresses, docs, shard_bits=0, bucket_bits=1)  # ~250 a bucket
    index = sharded_index.ShardedIndex(fs, str(tmp_path))
    for address in addresses[::25]:
        assert index.get(address, json.loads)["address"] == address


def test_an_empty_bucket_needs_no_request(tmp_path):
    addresses, docs = _docs(3)
    fs = versioned.ObjectStoreFS(tmp_path / "store")
    folder = fs.uri("v")
    sharded_index.write(fs, folder, addresses, docs, shard_bits=2, bucket_bits=16)  # 65,536 buckets, 3 full
    index = sharded_index.ShardedIndex(fs, folder)
    assert [index.get(f"nope-{i}", json.loads) for i in range(200)] == [None] * 200
    assert fs.range_reads < 5  # at most the odd one that falls in one of the 3 full buckets


def test_a_directory_that_does_not_match_its_index_is_refused(tmp_path):
    addresses, docs = _docs(100)
    fs = versioned.LocalFS()
    sharded_index.write(fs, str(tmp_path), addresses, docs, shard_bits=1, bucket_bits=4)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 5), np.uint32))
    fs.write_bytes(str(tmp_path / "shards" / "directory.npy"), buffer.getvalue())
    with pytest.raises(ValueError, match="shape"):
        sharded_index.ShardedIndex(fs, str(tmp_path))


def test_sizing_keeps_buckets_small_and_shards_under_a_gibibyte():
    shard_bits, bucket_bits = sharded_index.sizing(1_000_000_000, 1_000_000_000 * 900)
    assert 2**shard_bits >= 900_000_000_000 / 2**30
    assert 1_000_000_000 / 2**bucket_bits <= sharded_index.DOCS_PER_BUCKET
    assert 4 * 2**bucket_bits < 200 * 2**20  # the directory fits a small Cloud Run instance


def test_a_repeated_lookup_is_answered_from_memory(tmp_path):
    addresses, docs = _docs(500)
    fs = versioned.ObjectStoreFS(tmp_path / "store")
    folder = fs.uri("v")
    sharded_index.write(fs, folder, addresses, docs, shard_bits=1, bucket_bits=5)
    index = sharded_index.ShardedIndex(fs, folder, cache_size=100)
    first = [index.get(a, json.loads) for a in addresses[:50]] + [index.get("bc1qnope", json.loads)]
    reads = fs.range_reads
    again = [index.get(a, json.loads) for a in addresses[:50]] + [index.get("bc1qnope", json.loads)]
    assert again == first and first[-1] is None and fs.range_reads == reads and index.cache_hits == 51
    again[0]["score"] = -1  # each answer is a fresh dict: a caller's change never reaches the cache
    assert index.get(addresses[0], json.loads) == first[0]
    [index.get(a, json.loads) for a in addresses[50:200]]  # the cache holds the latest 100 only
    reads = fs.range_reads
    index.get(addresses[0], json.loads)
    assert fs.range_reads == reads + 1
    uncached = sharded_index.ShardedIndex(fs, folder, cache_size=0)
    uncached.get(addresses[0], json.loads), uncached.get(addresses[0], json.loads)
    assert fs.range_reads == reads + 3 and uncached.cache_hits == 0
