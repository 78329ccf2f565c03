"""The snapshot switch under load: readers polling while a new day is published see the old day
or the new one, each answer whole (its scores are its day's), never a mix and never back; a
new day is picked up without a restart; a broken publish leaves the previous snapshot serving."""
from __future__ import annotations

import threading
import time

import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic, versioned
from pool_classifier.steps import publish_serving
from tests.api.conftest import DAYS, build_bucket, start_server


@pytest.fixture
def live(tmp_path):
    """A bucket with the first two days published, and a server polling it every 50 ms."""
    bucket, truth = build_bucket(tmp_path, publish_until=DAYS[1], all_last_day=True)
    running = start_server(bucket, poll_seconds=0.05)
    yield bucket, truth, running
    running.stop()


def _wait_for(client, day: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = client.get("/readyz").json()
        if ready.get("snapshot_day") == day:
            return ready
        time.sleep(0.02)
    raise AssertionError(f"the server did not switch to {day} in {seconds} s: {ready}")


def test_readers_during_a_publish_see_the_old_or_the_new_day_never_a_mix(live):
    bucket, truth, server = live
    # Addresses scored on both days, with different scores: an answer's score tells its day.
    watched = [a for a in truth.addresses if (a, DAYS[1]) in truth.scores and (a, DAYS[2]) in truth.scores][:40]
    assert len(watched) == 40
    seen: list[list[tuple[str, str, float, int]]] = [[] for _ in range(4)]
    stop = threading.Event()

    def read(lane: int):
        with server.client() as c:
            i = 0
            while not stop.is_set():
                if lane == 0:  # batches: all results must be of the response's day
                    r = c.post("/v1/addresses:lookup", json={"addresses": watched})
                    body = r.json()
                    for item in body["results"]:
                        seen[lane].append((body["snapshot_day"], item["address"], item["result"]["score"],
                                           r.status_code))
                else:
                    address = watched[i % len(watched)]
                    r = c.get(f"/v1/addresses/{address}")
                    body = r.json()
                    seen[lane].append((body["lineage"]["snapshot_day"], address, body["score"], r.status_code))
                i += 1

    threads = [threading.Thread(target=read, args=(lane,)) for lane in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    publish_serving.publish(datasets.Bucket(bucket), DAYS[2])
    with server.client() as c:
        _wait_for(c, DAYS[2])
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()

    answers = [a for lane in seen for a in lane]
    assert len(answers) > 200
    assert {status for *_, status in answers} == {200}
    assert {day for day, *_ in answers} == {DAYS[1], DAYS[2]}
    for day, address, score, _ in answers:
        assert score == pytest.approx(truth.scores[(address, day)]), (day, address)
    for lane in seen:
        days = [day for day, *_ in lane]
        assert days == sorted(days), "a reader went back to the older day"


def test_a_broken_publish_leaves_the_previous_snapshot_serving(live):
    bucket, truth, server = live
    where = datasets.Bucket(bucket)
    root = datasets.serving_root(where)
    with server.client() as c:
        before = _wait_for(c, DAYS[1])
        # A version whose snapshot file is not a DuckDB database, switched in as a publish would.
        broken = f"{datasets.serving_dir(where, DAYS[2])}/v=broken"
        atomic.FS.makedirs(broken)
        atomic.FS.write_bytes(f"{broken}/{datasets.SERVING_FILE}", b"not a database")
        versioned.switch(atomic.FS, root, [f"dt={DAYS[2]}/v=broken"], meta={"ds": DAYS[2], "version": "broken"})
        deadline = time.monotonic() + 10
        while (ready := c.get("/readyz").json())["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready["ready"] and ready["snapshot_day"] == DAYS[1]
        assert ready["snapshot_version"] == before["snapshot_version"]
        assert "was not loaded" in ready["last_error"] and f"still serving {DAYS[1]}" in ready["last_error"]
        address = truth.addresses[1]
        body = c.get(f"/v1/addresses/{address}").json()
        assert body["lineage"]["snapshot_day"] == DAYS[1]
        # A pointer that is not JSON: the same.
        atomic.FS.write_bytes(f"{root}/{versioned.POINTER}", b"{half a poin")
        time.sleep(0.3)
        assert c.get("/readyz").json()["snapshot_day"] == DAYS[1]
        assert c.get(f"/v1/addresses/{address}").status_code == 200
        # The next good publish is picked up.
        publish_serving.publish(where, DAYS[2])
        ready = _wait_for(c, DAYS[2])
        assert ready["last_error"] is None


def test_an_as_of_day_republished_or_removed_after_it_was_opened_is_never_a_500(live):
    bucket, truth, server = live
    where = datasets.Bucket(bucket)
    address = truth.addresses[1]
    with server.client() as c:
        _wait_for(c, DAYS[1])
        first = c.get(f"/v1/addresses/{address}", params={"as_of": DAYS[0]})
        assert first.status_code == 200 and first.json()["lineage"]["snapshot_day"] == DAYS[0]
        old_version = first.json()["lineage"]["snapshot_version"]
        # Republished: the next answer as of that day comes from the new version.
        again = publish_serving.publish(where, DAYS[0])
        body = c.get(f"/v1/addresses/{address}", params={"as_of": DAYS[0]}).json()
        assert body["lineage"]["snapshot_version"] == again["version"] != old_version
        # Removed (as gcp's retention does, pointer first): the day is no longer answered, and
        # nothing fails.
        atomic.remove(datasets.serving_dir(where, DAYS[0]))
        gone = c.get(f"/v1/addresses/{address}", params={"as_of": DAYS[0]})
        assert gone.status_code == 404 and gone.json()["error"]


def test_before_any_publish_it_is_not_ready_and_says_what_to_run(tmp_path):
    bucket, truth = build_bucket(tmp_path, days=DAYS[:1])
    server = start_server(bucket, poll_seconds=0.05)
    try:
        with server.client() as c:
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            r = c.get(f"/v1/addresses/{truth.addresses[0]}")
            assert r.status_code == 503 and "publish_serving" in r.json()["what_to_do"]
            publish_serving.publish(datasets.Bucket(bucket), DAYS[0])
            assert _wait_for(c, DAYS[0])["ready"] is True
            assert c.get(f"/v1/addresses/{truth.addresses[0]}").status_code == 200
    finally:
        server.stop()


def test_a_snapshot_on_an_object_store_is_copied_locally_and_served(served, tmp_path):
    """gs:// (here the project's object-store double): the API copies the version the pointer names
    to its cache folder, then serves it like a local one."""
    from api.store import SnapshotStore

    bucket, truth = served
    local = datasets.Bucket(bucket)
    store_fs = versioned.ObjectStoreFS(tmp_path / "objects")
    remote = datasets.Bucket(store_fs.uri("bucket-root"))
    folder = versioned.resolve(atomic.FS, datasets.serving_dir(local, DAYS[-1]))[0]
    version = folder.rsplit("/", 1)[-1]
    for file in versioned.data_files(atomic.FS, datasets.serving_dir(local, DAYS[-1]), suffix=None):
        rel = file[len(folder) + 1:]
        store_fs.write_bytes(f"{datasets.serving_dir(remote, DAYS[-1])}/{version}/{rel}", atomic.FS.read_bytes(file))
    versioned.switch(store_fs, datasets.serving_root(remote), [f"dt={DAYS[-1]}/{version}"],
                     meta={"ds": DAYS[-1], "version": version[2:]})
    store = SnapshotStore(remote.bucket, fs=store_fs, cache_dir=str(tmp_path / "cache"))
    assert store.refresh() and store.current.day == DAYS[-1]
    assert store.current.folder.startswith(str(tmp_path / "cache"))
    address = truth.addresses[0]
    assert store.current.addresses([address])[address]["score"] == pytest.approx(truth.scores[(address, DAYS[-1])])
