"""io/doc_index.py: every document found by its address, absent ones None, two addresses with one
key told apart, a damaged index refused."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from pool_classifier.io import doc_index


def _write(folder, addresses):
    docs = pa.array([json.dumps({"address": a, "n": i}) for i, a in enumerate(addresses)])
    return doc_index.write(folder, addresses, docs)


def test_every_document_is_found_by_its_address(tmp_path):
    addresses = [f"addr{i}" for i in range(5000)]
    assert _write(tmp_path, addresses) == 5000
    index = doc_index.DocIndex(tmp_path)
    assert [index.get(a, json.loads)["n"] for a in addresses] == list(range(5000))
    assert index.get("addr5000", json.loads) is None and index.get("", json.loads) is None


def test_two_addresses_with_one_key_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_index, "key", lambda address: 7 if address in ("a", "b") else len(address))
    _write(tmp_path, ["a", "xyz", "b"])
    index = doc_index.DocIndex(tmp_path)
    assert (index.get("a", json.loads)["n"], index.get("b", json.loads)["n"]) == (0, 2)
    assert index.get("c", json.loads) is None


def test_an_empty_index_and_a_damaged_one(tmp_path):
    _write(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None, [])
    assert doc_index.DocIndex(tmp_path / "empty").get("a", json.loads) is None
    (tmp_path / "bad").mkdir()
    _write(tmp_path / "bad", ["a", "b"])
    np.save(tmp_path / "bad" / doc_index.OFFSETS_FILE, np.array([[0, 10], [10, 10 ** 6]]))
    with pytest.raises(ValueError, match="past the end"):
        doc_index.DocIndex(tmp_path / "bad")
