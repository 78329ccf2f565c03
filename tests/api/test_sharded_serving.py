"""The gcp serving store end to end, on the object-store double with real files: publish_serving
writes the day's documents as shards into a new version on the store (the gcp target's
`serving_index`), the API reads each lookup by one ranged GET and answers exactly what the local
snapshot answers for the same day, over a real HTTP server; and a reader polling while a publish
is half-way through always serves one whole day, never a mix (the pointers are written last)."""
from __future__ import annotations

import dataclasses

import pytest

from api.store import SnapshotStore
from pool_classifier import datasets
from pool_classifier.io import sharded_index, versioned
from pool_classifier.steps import publish_serving
from pool_classifier.targets import gcp, local
from tests.api.conftest import DAYS, start_server


def _gcp_like(bucket: str):
    """The local target over the test bucket, with the gcp target's serving index."""
    return dataclasses.replace(local.target(), bucket=bucket, serving_index=gcp.target_for_bucket("gs://b").serving_index)


def test_the_gcp_target_serves_from_shards_and_the_local_one_from_a_memory_map():
    assert gcp.target_for_bucket("gs://b").serving_index == "sharded"
    assert local.target().serving_index == "mmap"


@pytest.fixture(scope="module")
def on_store(served, tmp_path_factory):
    """(object store, its serving bucket, the local bucket, truth): the last day published as shards."""
    bucket, truth = served
    fs = versioned.ObjectStoreFS(tmp_path_factory.mktemp("objects"), bucket="pool-data")
    remote = datasets.Bucket(fs.uri("data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sharded_index, "SHARD_BYTES", 2**16)  # many shards of a small bucket, as 1 B would have
        summary = publish_serving.publish(_gcp_like(bucket), DAYS[-1], fs=fs, where=remote)
    assert summary["serving"] and summary["documents"] > 0
    return fs, remote, bucket, truth


def test_lookups_from_the_shards_equal_the_local_snapshot(on_store, tmp_path):
    fs, remote, bucket, truth = on_store
    sharded = SnapshotStore(remote.bucket, fs=fs, cache_dir=str(tmp_path / "cache"))
    assert sharded.refresh()
    assert sharded.current.meta["doc_index"] == "sharded"
    assert sharded.current.docs.index["shards"] >= 8
    # Nothing of the shards was copied: only the DuckDB file and the model files.
    copied = {p.relative_to(tmp_path / "cache").parts[1] for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert sharded_index.FOLDER not in copied and datasets.SERVING_FILE in copied
    mmap = SnapshotStore(bucket)
    assert mmap.refresh() and mmap.current.day == sharded.current.day == DAYS[-1]
    addresses = truth.addresses + ["1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "bc1qnotascoredaddressatall000000000000"]
    before = fs.range_reads
    assert sharded.current.addresses(addresses) == mmap.current.addresses(addresses)
    assert fs.range_reads - before <= len(addresses)  # at most one ranged GET a lookup
    assert len(mmap.current.addresses(addresses)) >= len(truth.addresses) * 0.9


def test_the_api_over_the_shards_answers_as_the_local_api(on_store, server, tmp_path):
    fs, remote, _, truth = on_store
    running = start_server(remote.bucket, fs=fs, cache_dir=str(tmp_path / "cache"))
    try:
        with running.client() as over_shards, server.client() as over_mmap:
            ready = over_shards.get("/readyz").json()
            assert ready["ready"] and ready["snapshot_day"] == DAYS[-1]
            body = {"addresses": truth.addresses[:200]}
            a, b = over_shards.post("/v1/addresses:lookup", json=body), over_mmap.post("/v1/addresses:lookup", json=body)
            assert a.status_code == b.status_code == 200
            assert _without_versions(a.json()) == _without_versions(b.json())
            for address in truth.addresses[:5]:
                for path in (f"/v1/addresses/{address}", f"/v1/addresses/{address}/history"):
                    one, other = over_shards.get(path), over_mmap.get(path)
                    assert one.status_code == other.status_code == 200
                    assert _without_versions(one.json()) == _without_versions(other.json())
            assert len(over_shards.get(f"/v1/addresses/{truth.addresses[0]}/history").json()["history"]) >= 1
            # What the slim DuckDB file answers (pools, a pool's addresses, candidates): the same.
            pool_id = over_mmap.get("/v1/pools").json()["pools"][0]["pool_id"]
            for path in ("/v1/pools", f"/v1/pools/{pool_id}", "/v1/candidates?limit=50", "/v1/model"):
                one, other = over_shards.get(path), over_mmap.get(path)
                assert one.status_code == other.status_code == 200, path
                assert _without_versions(one.json()) == _without_versions(other.json()), path
    finally:
        running.stop()


def test_the_sharded_snapshot_keeps_its_duckdb_file_small(on_store, tmp_path):
    """The history is in the documents and the scores of unlabelled addresses only there: the file a
    Cloud Run instance copies does not grow with the addresses."""
    import duckdb

    fs, remote, bucket, truth = on_store
    sharded = SnapshotStore(remote.bucket, fs=fs, cache_dir=str(tmp_path / "cache"))
    assert sharded.refresh()
    mmap = SnapshotStore(bucket)
    assert mmap.refresh()
    slim = duckdb.connect(f"{sharded.current.folder}/{datasets.SERVING_FILE}", read_only=True)
    full = duckdb.connect(f"{mmap.current.folder}/{datasets.SERVING_FILE}", read_only=True)
    count = lambda con, sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert count(slim, "SELECT count(*) FROM history") == 0 < count(full, "SELECT count(*) FROM history")
    assert count(slim, "SELECT count(*) FROM scores") == count(
        full, "SELECT count(*) FROM scores WHERE address IN (SELECT address FROM labels)") < len(truth.addresses) / 10
    for table in ("labels", "candidates", "pools", "pool_days", "block_pools"):
        assert count(slim, f"SELECT count(*) FROM {table}") == count(full, f"SELECT count(*) FROM {table}"), table
    # (Its size on disk at this scale is DuckDB's blocks, ~2.6 MB either way: the row counts are the point.)


def _without_versions(value):
    """The answer without the snapshot's version id (two publishes of one day differ only there)."""
    if isinstance(value, dict):
        return {k: _without_versions(v) for k, v in value.items() if k != "snapshot_version"}
    if isinstance(value, list):
        return [_without_versions(v) for v in value]
    return value


def test_a_reader_during_a_publish_sees_one_whole_day(served, tmp_path, monkeypatch):
    """Day 1 serving; day 2 published to the store. Before every object write of that publish a
    reader re-reads the pointer and looks addresses up: it serves day 1, answers as day 1's
    local snapshot, until the serving pointer is written, and day 2 after, never a mix."""
    bucket, truth = served
    local_days = SnapshotStore(bucket)
    expected = {d: local_days.for_day(d).addresses(truth.addresses[:150]) for d in DAYS[:2]}
    assert expected[DAYS[0]] != expected[DAYS[1]]  # the days differ, so a mix would show

    seen = []
    reader: SnapshotStore | None = None

    def hook(op, path):
        if reader is None or op != "write":
            return
        reader.refresh()
        current = reader.current
        seen.append((path, current.day))
        assert current.addresses(truth.addresses[:150]) == expected[current.day], (path, current.day)

    monkeypatch.setattr(sharded_index, "SHARD_BYTES", 2**16)
    fs = versioned.ObjectStoreFS(tmp_path / "objects", bucket="pool-data", hook=hook)
    remote = datasets.Bucket(fs.uri("data"))
    publish_serving.publish(_gcp_like(bucket), DAYS[0], fs=fs, where=remote)
    reader = SnapshotStore(remote.bucket, fs=fs, cache_dir=str(tmp_path / "cache"))
    assert reader.refresh() and reader.current.day == DAYS[0]
    publish_serving.publish(_gcp_like(bucket), DAYS[1], fs=fs, where=remote)
    reader.refresh()
    assert reader.current.day == DAYS[1]
    assert reader.current.addresses(truth.addresses[:150]) == expected[DAYS[1]]
    # The reader looked before each of the publish's writes, shards included, and saw day 1 each time:
    # day 2 only appears once the serving pointer (the last write) is in place.
    shard_writes = [p for p, _ in seen if f"/{sharded_index.FOLDER}/" in p]
    assert len(shard_writes) >= 10
    assert {day for _, day in seen} == {DAYS[0]}
    assert seen[-1][0] == f"{datasets.serving_root(remote)}/{versioned.POINTER}"


def test_the_bucket_keeps_the_two_newest_sharded_days(served, tmp_path):
    """A sharded day is the whole history's documents: publishing a third day removes the first
    (pointer first, then its objects); a backfill of an old day is kept until the next publish."""
    bucket, truth = served
    fs = versioned.ObjectStoreFS(tmp_path / "objects", bucket="pool-data")
    remote = datasets.Bucket(fs.uri("data"))
    summaries = [publish_serving.publish(_gcp_like(bucket), day, fs=fs, where=remote) for day in DAYS]
    assert [s.get("removed_days", []) for s in summaries] == [[], [], [DAYS[0]]]
    root = datasets.serving_root(remote)
    assert sorted(n for n in fs.list_dir(root) if n.startswith("dt=")) == [f"dt={d}/" for d in DAYS[1:]]
    assert not fs.exists(datasets.serving_dir(remote, DAYS[0]))
    store = SnapshotStore(remote.bucket, fs=fs, cache_dir=str(tmp_path / "cache"))
    assert store.refresh() and store.current.day == DAYS[-1] and store.days() == DAYS[1:]
    assert store.current.addresses(truth.addresses[:20])
    backfill = publish_serving.publish(_gcp_like(bucket), DAYS[0], fs=fs, where=remote)
    assert not backfill["serving"] and "removed_days" not in backfill
    assert store.days() == DAYS  # until the next day's publish removes it again
