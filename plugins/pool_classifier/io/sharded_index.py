"""The serving documents as a static sharded index on an object store (the gcp target's serving
store): a lookup is one ranged GET of a few kilobytes, with no database to run or pay for.

Layout under a snapshot version folder V (any `versioned.FileSystem`: Cloud Storage, a folder):

    V/shards/index.json        {"format", "compression", "documents", "shard_bits", "bucket_bits", "shards", …}
    V/shards/directory.npy     per shard, the byte offset of each bucket's first record (+ the end)
    V/shards/00000.bin …       the shard's buckets, end to end, each compressed on its own

An address's 64-bit key (`doc_index.key`, blake2b) picks its bucket by its top `bucket_bits`
bits, and the bucket's shard by its top `shard_bits`; a shard holds 2^(bucket_bits-shard_bits)
consecutive buckets, each bucket one zlib stream of its records sorted by key. A record is `<key
u64 LE><length u32 LE><the JSON document>`. The reader holds the directory in memory (4 bytes a bucket: 64 MiB for
the 2^24 buckets of 1 B addresses at ≤ 64 a bucket) and fetches exactly one bucket's byte range
(~60 KB); an empty bucket needs no request at all. Two addresses with one key are told apart by the address
each document holds, as in `doc_index`.

Written into a version folder before its pointer (io/versioned.py), so a reader that resolved the
pointer reads one complete index; objects are never changed once written.
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from pool_classifier.io import doc_index, versioned

FORMAT = "sharded-1"
FOLDER = "shards"
INDEX_FILE = "index.json"
DIRECTORY_FILE = "directory.npy"
_HEADER = struct.Struct("<QI")
# A bucket of ~64 documents of ~1 KB: one ranged GET of ~64 KB, as fast as a 4 KB one on Cloud
# Storage (its latency is per request, not per byte, below ~1 MB), with a directory 1/64 the size.
DOCS_PER_BUCKET = 64
# Shards of ≤ 1 GiB (before compression): uint32 offsets, and many objects, not one huge.
SHARD_BYTES = 2**30
# Each bucket is one zlib stream: the JSON documents of a bucket shrink ~4.6× (measured on a
# 64-document block of the test snapshot), so do the storage bill and the bytes a GET carries;
# inflating ~50 KB costs tens of microseconds.
COMPRESSION_LEVEL = 6
# Answers kept in memory per open snapshot: ~80 MB of documents at most (~0.8 KB each), so a hot
# address (a pool's payout address, a page reloaded) costs one GET per instance and snapshot.
CACHE_SIZE = 100_000


def shard_name(shard: int) -> str:
    return f"{shard:05d}.bin"


def sizing(documents: int, total_bytes: int) -> tuple[int, int]:
    """(shard_bits, bucket_bits) for an index of `documents` totalling `total_bytes`."""
    shard_bits = max(0, math.ceil(math.log2(max(1, total_bytes / SHARD_BYTES))))
    bucket_bits = max(shard_bits, math.ceil(math.log2(max(1, documents / DOCS_PER_BUCKET))))
    return shard_bits, min(bucket_bits, 32)


def write(fs: versioned.FileSystem, folder: str, addresses: list[str], docs,
          shard_bits: int | None = None, bucket_bits: int | None = None) -> dict:
    """Write the index of `docs` (a pyarrow string array, one JSON document per address, each
    holding its "address") under `folder`/shards/ through `fs`; the shards first, the directory
    and index.json last. Returns the index.json content."""
    import io

    import numpy as np
    import pyarrow as pa

    docs = docs.combine_chunks() if isinstance(docs, pa.ChunkedArray) else docs
    docs = docs.cast(pa.large_binary())
    if len(addresses) != len(docs):
        raise ValueError(f"sharded_index.write: {len(addresses)} addresses but {len(docs)} documents")
    offsets = np.frombuffer(docs.buffers()[1], dtype=np.int64)[docs.offset:docs.offset + len(docs) + 1]
    lengths = np.diff(offsets) if len(docs) else np.zeros(0, np.int64)
    total = int(lengths.sum()) + _HEADER.size * len(docs)
    auto = sizing(len(docs), total)
    shard_bits = auto[0] if shard_bits is None else shard_bits
    bucket_bits = auto[1] if bucket_bits is None else bucket_bits
    if not 0 <= shard_bits <= bucket_bits <= 32:
        raise ValueError(f"sharded_index.write: need 0 ≤ shard_bits ({shard_bits}) ≤ bucket_bits ({bucket_bits}) ≤ 32")
    keys = np.fromiter((doc_index.key(a) for a in addresses), dtype=np.uint64, count=len(addresses))
    order = np.argsort(keys, kind="stable")
    keys, lengths = keys[order], lengths[order]
    buckets = (keys >> np.uint64(64 - bucket_bits)).astype(np.int64) if bucket_bits else np.zeros(len(keys), np.int64)
    per_shard = 1 << (bucket_bits - shard_bits)
    shards = 1 << shard_bits
    data = docs.buffers()[2]
    view = memoryview(data) if data is not None else memoryview(b"")
    # Records are in key order, so each bucket's records are a run: [bucket_bounds[b], bucket_bounds[b + 1]).
    bucket_bounds = np.searchsorted(buckets, np.arange((1 << bucket_bits) + 1))
    starts = np.zeros((shards, per_shard + 1), dtype=np.int64)
    stored = 0
    for shard in range(shards):
        out = bytearray()
        for local in range(per_shard):
            b = shard * per_shard + local
            raw = bytearray()
            for i in range(int(bucket_bounds[b]), int(bucket_bounds[b + 1])):
                j = int(order[i])
                raw += _HEADER.pack(int(keys[i]), int(lengths[i]))
                raw += view[int(offsets[j]):int(offsets[j + 1])]
            out += zlib.compress(bytes(raw), COMPRESSION_LEVEL) if raw else b""
            starts[shard, local + 1] = len(out)
        if len(out) >= 2**32:
            raise ValueError(f"sharded_index.write: shard {shard} holds {len(out)} bytes (≥ 4 GiB); raise shard_bits")
        fs.write_bytes(fs.join(folder, FOLDER, shard_name(shard)), bytes(out))
        stored += len(out)
    buffer = io.BytesIO()
    np.save(buffer, starts.astype(np.uint32))
    fs.write_bytes(fs.join(folder, FOLDER, DIRECTORY_FILE), buffer.getvalue())
    index = {"format": FORMAT, "documents": int(len(docs)), "shard_bits": shard_bits, "bucket_bits": bucket_bits,
             "shards": shards, "bytes": total, "stored_bytes": stored, "compression": "zlib"}
    fs.write_bytes(fs.join(folder, FOLDER, INDEX_FILE), json.dumps(index, sort_keys=True).encode("utf-8"))
    return index


class ShardedIndex:
    """The documents of a sharded index at `folder` (read through `fs`); `get(address, parse)` →
    parse(bytes) or None, with at most one ranged read. Thread-safe (no state changes after open)."""

    def __init__(self, fs: versioned.FileSystem, folder: str, workers: int = 32, cache_size: int = CACHE_SIZE):
        import io
        import threading
        from collections import OrderedDict

        import numpy as np

        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

        self._np = np
        self.fs, self.folder = fs, folder
        base = fs.join(folder, FOLDER)
        self.index = json.loads(fs.read_bytes(fs.join(base, INDEX_FILE)).decode("utf-8"))
        if (self.index.get("format"), self.index.get("compression")) != (FORMAT, "zlib"):
            raise ValueError(f"{base}/{INDEX_FILE} has format {self.index.get('format')!r}, compression "
                             f"{self.index.get('compression')!r}; this reader reads {FORMAT!r}, 'zlib'")
        self.directory = np.load(io.BytesIO(fs.read_bytes(fs.join(base, DIRECTORY_FILE))))
        self.shard_bits, self.bucket_bits = self.index["shard_bits"], self.index["bucket_bits"]
        expected = (1 << self.shard_bits, (1 << (self.bucket_bits - self.shard_bits)) + 1)
        if self.directory.shape != expected:
            raise ValueError(f"{base}/{DIRECTORY_FILE} has shape {self.directory.shape}; index.json implies {expected}")
        self._shards = [fs.join(base, shard_name(s)) for s in range(expected[0])]
        self._workers = workers

    def __len__(self) -> int:
        return int(self.index["documents"])

    def _span(self, k: int) -> tuple[int, int, int]:
        bucket = k >> (64 - self.bucket_bits) if self.bucket_bits else 0
        shard = bucket >> (self.bucket_bits - self.shard_bits)
        local = bucket & ((1 << (self.bucket_bits - self.shard_bits)) - 1)
        return shard, int(self.directory[shard, local]), int(self.directory[shard, local + 1])

    def get(self, address: str, parse: Callable[[bytes], dict]):
        """The parsed document of `address` (parse must give a dict with "address"), or None. The
        latest `cache_size` answers (found or not) are kept: a repeated lookup costs no GET."""
        with self._cache_lock:
            if address in self._cache:
                self._cache.move_to_end(address)
                self.cache_hits += 1
                raw = self._cache[address]
                return None if raw is None else parse(raw)
        raw = self._fetch(address, parse)
        if self._cache_size:
            with self._cache_lock:
                self._cache[address] = raw
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return None if raw is None else parse(raw)

    def _fetch(self, address: str, parse: Callable[[bytes], dict]) -> bytes | None:
        """The raw document of `address` from its bucket (one ranged read), or None."""
        k = doc_index.key(address)
        shard, start, end = self._span(k)
        if start == end:
            return None
        block = zlib.decompress(versioned.read_range(self.fs, self._shards[shard], start, end))
        at = 0
        while at < len(block):
            key, length = _HEADER.unpack_from(block, at)
            at += _HEADER.size
            if key == k:
                raw = block[at:at + length]
                if parse(raw).get("address") == address:
                    return raw
            elif key > k:
                return None
            at += length
        return None

    def get_many(self, addresses: Iterable[str], parse: Callable[[bytes], dict]) -> dict:
        """address → parsed document for the found ones; the ranged reads run in parallel (a batch
        of 1,000 is ~1,000 / workers round trips, not 1,000)."""
        addresses = list(dict.fromkeys(addresses))
        if len(addresses) <= 1:
            results = [self.get(a, parse) for a in addresses]
        else:
            with ThreadPoolExecutor(max_workers=min(self._workers, len(addresses))) as pool:
                results = list(pool.map(lambda a: self.get(a, parse), addresses))
        return {a: d for a, d in zip(addresses, results) if d is not None}

    def close(self) -> None:
        return None
