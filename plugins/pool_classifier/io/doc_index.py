"""A read-only key → document file: the serving snapshot's per-address JSON documents, found in
microseconds by a memory map (what the prediction API's lookups read; DuckDB's point query costs
~0.5 ms a lookup on a million addresses, over the API's whole budget).

Three files in a folder: `docs.bin`, the documents' UTF-8 bytes end to end; `docs.keys.npy`, the
sorted 64-bit keys of their addresses (blake2b); `docs.offsets.npy`, each key's (start, end) in
docs.bin. A lookup is a binary search in the keys and a slice of the map; two addresses with one
key (about 1 in 10^7 for a million) are told apart by the address each document holds, which the
reader checks. Written once per snapshot version, never changed (io/versioned.py publishes it).
"""
from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

DOCS_FILE = "docs.bin"
KEYS_FILE = "docs.keys.npy"
OFFSETS_FILE = "docs.offsets.npy"
FILES = (DOCS_FILE, KEYS_FILE, OFFSETS_FILE)


def key(address: str) -> int:
    """The 64-bit key of an address."""
    return int.from_bytes(hashlib.blake2b(address.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def write(folder: str | os.PathLike, addresses: list[str], docs) -> int:
    """Write the index of `docs` (a pyarrow string array, one JSON document per address, each
    holding its "address") into `folder`; returns the documents written."""
    import numpy as np
    import pyarrow as pa

    folder = Path(folder)
    docs = docs.combine_chunks() if isinstance(docs, pa.ChunkedArray) else docs
    docs = docs.cast(pa.large_string())
    offsets = np.frombuffer(docs.buffers()[1], dtype=np.int64)[docs.offset:docs.offset + len(docs) + 1]
    base = int(offsets[0]) if len(docs) else 0
    with open(folder / DOCS_FILE, "wb") as out:
        if len(docs):
            out.write(memoryview(docs.buffers()[2])[base:int(offsets[-1])])
    keys = np.fromiter((key(a) for a in addresses), dtype=np.uint64, count=len(addresses))
    order = np.argsort(keys, kind="stable")
    spans = np.stack([offsets[:-1] - base, offsets[1:] - base], axis=1) if len(docs) else np.zeros((0, 2), np.int64)
    np.save(folder / KEYS_FILE, keys[order])
    np.save(folder / OFFSETS_FILE, spans[order])
    return len(addresses)


class DocIndex:
    """The documents of a folder, memory-mapped; `get(address, parse)` → parse(bytes) or None."""

    def __init__(self, folder: str | os.PathLike):
        import numpy as np

        folder = Path(folder)
        self._np = np
        self.keys = np.load(folder / KEYS_FILE)
        self.spans = np.load(folder / OFFSETS_FILE)
        if len(self.keys) != len(self.spans):
            raise ValueError(f"{folder}: {len(self.keys)} keys but {len(self.spans)} offsets")
        self._file = open(folder / DOCS_FILE, "rb")
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if len(self.spans) and int(self.spans[:, 1].max()) > size:
            raise ValueError(f"{folder}: offsets run past the end of {DOCS_FILE} ({size} bytes)")

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, address: str, parse):
        """The parsed document of `address` (parse(bytes) must give a dict with "address"), or None."""
        k = self._np.uint64(key(address))
        i = int(self.keys.searchsorted(k))
        while i < len(self.keys) and self.keys[i] == k:
            start, end = self.spans[i]
            doc = parse(self._map[int(start):int(end)])
            if doc.get("address") == address:
                return doc
            i += 1
        return None

    def get_many(self, addresses, parse) -> dict:
        """address → parsed document, for the found ones."""
        found = {}
        for address in dict.fromkeys(addresses):
            doc = self.get(address, parse)
            if doc is not None:
                found[address] = doc
        return found

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._file.close()
