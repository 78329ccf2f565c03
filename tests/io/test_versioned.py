"""Versioned publishing (pool_classifier.io.versioned): a reader sees one version whole or
nothing, on a local disk, on an object store without rename (where a folder 'rename' is shown
to be seen half done), through a SIGKILL of the writer, and through Hadoop's FileSystem."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pool_classifier.io import versioned
from pool_classifier.io.versioned import HadoopFS, LocalFS, ObjectStoreFS, PointerError

PLUGINS = Path(versioned.__file__).resolve().parents[2]
N_FILES = 5


def content(i: int, j: int, size: int = 20_000) -> bytes:
    """File j of version i: names its version at both ends, so a torn read shows."""
    return f"version={i} file={j}\n".encode() + b"x" * size + f"\nend version={i} file={j}\n".encode()


def parse(data: bytes) -> tuple[int, int] | None:
    """(version, file) of a whole file, None for a torn one."""
    head, _, rest = data.partition(b"\n")
    try:
        i, j = (int(part.split(b"=")[1]) for part in head.split(b" "))
    except (ValueError, IndexError):
        return None
    return (i, j) if data == content(i, j, len(rest) - len(f"\nend version={i} file={j}\n")) else None


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.001)


class Reader:
    """Reads a location as a consumer would (pointer, then the files it names) and records what
    it saw; every anomaly goes to `errors`."""

    def __init__(self, fs, location: str, n_files: int = N_FILES, suffix: str = ".txt"):
        self.fs, self.location, self.n_files, self.suffix = fs, location, n_files, suffix
        self.empty = self.whole = self.stale = 0
        self.seen: list[int] = []  # version of each whole read, in order
        self.errors: list[str] = []

    def read_once(self) -> int | None:
        pointer = versioned.read_pointer(self.fs, self.location)
        if pointer is None:
            if self.whole:
                self.errors.append("the location became absent after a version was seen")
            self.empty += 1
            return None
        files = versioned.data_files(self.fs, self.location, self.suffix, pointer=pointer)
        try:
            blobs = [self.fs.read_bytes(f) for f in files]
        except FileNotFoundError as exc:
            # allowed only if the version read was superseded twice (kept one cycle, then removed)
            now = versioned.read_pointer(self.fs, self.location)
            if now is None or now["meta"]["i"] < pointer["meta"]["i"] + 2:
                self.errors.append(f"{exc} vanished while version {pointer['meta']['i']} was only "
                                   f"one publish old (now {now and now['meta']['i']})")
            self.stale += 1
            return None
        parsed = [parse(b) for b in blobs]
        if None in parsed:
            self.errors.append(f"torn file in version {pointer['meta']['i']}: {files}")
            return None
        found = {i for i, _ in parsed}
        numbers = sorted(j for _, j in parsed)
        if found != {pointer["meta"]["i"]} or numbers != list(range(self.n_files)):
            self.errors.append(f"not one whole version: versions {found}, files {numbers}, "
                               f"pointer says {pointer['meta']['i']}")
            return None
        self.whole += 1
        self.seen.append(pointer["meta"]["i"])
        return pointer["meta"]["i"]


def poll_while_publishing(fs, location, write_version, versions: int, stop_reading=None) -> Reader:
    """A reader thread polls from before the first publish until after the last one; after each
    publish the writer waits (bounded) until the reader has read that version once."""
    reader = Reader(fs, location)
    stop = threading.Event()
    deadline = time.monotonic() + 30

    def poll():
        while True:
            last = stop.is_set() or time.monotonic() > deadline
            try:
                reader.read_once()
            except Exception as exc:  # e.g. a torn pointer: recorded, the poll goes on
                reader.errors.append(repr(exc))
            if last:
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        wait_until(lambda: reader.empty >= 1, 5, "a first read of the absent location")
        for i in range(versions):
            write_version(i)
            wait_until(lambda: i in reader.seen or reader.errors, 5, f"the reader to see version {i}")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    return reader


def assert_saw_every_version_whole(reader: Reader, versions: int) -> None:
    assert not reader.errors, reader.errors[:5]
    assert set(reader.seen) == set(range(versions))
    assert reader.seen == sorted(reader.seen), "a reader went back to an older version"
    assert reader.whole >= versions and reader.empty >= 1
    assert reader.whole + reader.empty > 2 * versions, "too few reads to mean anything"


# ---------------------------------------------------------------- 1. local disk


def test_local_reader_sees_one_whole_version_or_nothing_during_20_publishes(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "features" / "address_features" / "dt=2024-03-01")

    def write_version(i):
        with versioned.publish(fs, location, meta={"i": i}) as folder:
            for j in range(N_FILES):  # plain, non-atomic writes, in pieces: only the pointer protects
                data = content(i, j)
                with open(os.path.join(folder, f"part-{j:05d}.txt"), "wb") as out:
                    out.write(data[:1000])
                    out.flush()
                    time.sleep(0.0005)
                    out.write(data[1000:])

    reader = poll_while_publishing(fs, location, write_version, 20)
    assert_saw_every_version_whole(reader, 20)
    assert len(versioned.versions(fs, location)) == 2


# ---------------------------------------------------------------- 2. an object store (no rename)


def test_object_store_reader_sees_one_whole_version_or_nothing(tmp_path):
    fs = ObjectStoreFS(tmp_path / "store", delay=0.001)
    location = fs.uri("features/address_features/dt=2024-03-01")

    def write_version(i):
        with versioned.publish(fs, location, meta={"i": i}) as folder:
            for j in range(N_FILES):
                fs.write_bytes(fs.join(folder, f"part-{j:05d}.txt"), content(i, j))

    reader = poll_while_publishing(fs, location, write_version, 10)
    assert_saw_every_version_whole(reader, 10)


def test_object_store_reader_at_every_operation_boundary_never_sees_a_mix(tmp_path):
    """Deterministic: a whole read between every two object operations of 4 publishes."""
    fs = ObjectStoreFS(tmp_path / "store")
    location = fs.uri("day")
    reader = Reader(fs, location)
    fs.hook = lambda op, path: reader.read_once()
    for i in range(4):
        with versioned.publish(fs, location, meta={"i": i}) as folder:
            for j in range(N_FILES):
                fs.write_bytes(fs.join(folder, f"part-{j:05d}.txt"), content(i, j))
    reader.read_once()
    assert not reader.errors, reader.errors[:5]
    assert reader.empty == N_FILES + 1  # every write of the first version, and its pointer's
    assert set(reader.seen) == {0, 1, 2, 3} and reader.whole >= 3 * (N_FILES + 1)


def read_folder(fs, folder: str) -> tuple[set[int], list[int]] | None:
    """How an old-style reader reads a day: list the folder, read every file."""
    try:
        parsed = [parse(fs.read_bytes(fs.join(folder, name))) for name in fs.list_dir(folder)]
    except FileNotFoundError:
        return None  # listed, then gone: a half-moved folder too
    return {p[0] for p in parsed if p}, sorted(p[1] for p in parsed if p)


def old_rename_swap(fs, final: str, i: int) -> None:
    """spark_publish's old way, on a store where a folder rename is copy + delete."""
    tmp, old = f"{final}.tmp-{i}", f"{final}.old-{i}"
    for j in range(N_FILES):
        fs.write_bytes(fs.join(tmp, f"part-{j:05d}.txt"), content(i, j))
    if fs.exists(final):
        fs.copy_delete_rename(final, old)
    fs.copy_delete_rename(tmp, final)
    fs.delete(old)


def test_negative_control_a_folder_rename_on_the_object_store_is_seen_half_done(tmp_path):
    fs = ObjectStoreFS(tmp_path / "store", delay=0.001)
    final = fs.uri("features/address_features/dt=2024-03-01")
    old_rename_swap(fs, final, 0)
    assert read_folder(fs, final) == ({0}, list(range(N_FILES)))
    bad, whole, stop = [], [], threading.Event()

    def poll():
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            seen = read_folder(fs, final)
            if seen is None or len(seen[0]) > 1 or 0 < len(seen[1]) < N_FILES:
                bad.append(seen)  # half there, mixed, or listed then gone
            elif seen[1] == list(range(N_FILES)):
                whole.append(seen)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        for i in range(1, 30):
            old_rename_swap(fs, final, i)
            if bad and whole:
                break
    finally:
        stop.set()
        thread.join(10)
    assert bad, "the object store double let a folder rename look atomic: it does not behave like GCS"
    assert whole


def test_negative_control_at_every_operation_boundary_partial_and_mixed(tmp_path):
    """Deterministic: the old swap shows partial folders; copying over the day shows a mix."""
    fs = ObjectStoreFS(tmp_path / "store")
    final = fs.uri("day")
    old_rename_swap(fs, final, 0)
    observed = []
    fs.hook = lambda op, path: observed.append(read_folder(fs, final))
    old_rename_swap(fs, final, 1)
    partial = [o for o in observed if o is not None and 0 < len(o[1]) < N_FILES]
    assert {0} in [o[0] for o in partial] and {1} in [o[0] for o in partial], observed  # old, then new, half there
    assert (set(), []) in observed  # and a moment with no file at all
    observed.clear()
    for j in range(N_FILES):
        fs.write_bytes(fs.join(final + ".next", f"part-{j:05d}.txt"), content(2, j))
    fs.copy_delete_rename(final + ".next", final)  # straight over the day, object by object
    assert any(o is not None and o[0] == {1, 2} for o in observed), observed
    # and the versioned way over the very same store: never
    location = fs.uri("versioned-day")
    reader = Reader(fs, location)
    fs.hook = lambda op, path: reader.read_once()
    for i in range(3):
        versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(i, j) for j in range(N_FILES)},
                                meta={"i": i})
    assert not reader.errors and set(reader.seen) == {0, 1, 2}


def test_object_store_double_has_no_rename(tmp_path):
    fs = ObjectStoreFS(tmp_path / "store")
    fs.write_bytes(fs.uri("a/b"), b"1")
    with pytest.raises(NotImplementedError, match="no rename"):
        fs.rename(fs.uri("a"), fs.uri("c"))
    assert fs.list_dir(fs.uri("")) == ["a/"] and fs.list_dir(fs.uri("a")) == ["b"]
    assert fs.exists(fs.uri("a")) and not fs.exists(fs.uri("c"))


# ---------------------------------------------------------------- 3. a writer killed midway

KILLED_WRITER = """
import os, sys, time
from pool_classifier.io import versioned
with versioned.publish(versioned.LocalFS(), sys.argv[1], meta={"i": 1}) as folder:
    print(folder, flush=True)
    for j in range(50):
        data = f"version=1 file={j}\\n".encode() + b"x" * 20000 + f"\\nend version=1 file={j}\\n".encode()
        with open(os.path.join(folder, f"part-{j:05d}.txt"), "wb") as out:
            out.write(data)
        print(j, flush=True)
        time.sleep(0.05)
"""


def test_a_writer_killed_midway_leaves_the_previous_version_in_force(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "dt=2024-03-01")
    versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(0, j) for j in range(N_FILES)},
                            meta={"i": 0})
    (previous,) = versioned.versions(fs, location)
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, location], stdout=subprocess.PIPE, env=env,
                            bufsize=0)
    lines, deadline = [], time.monotonic() + 20
    try:
        while "3" not in lines:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and proc.poll() is None, f"the writer did not get to file 3: {lines}"
            if select.select([proc.stdout], [], [], remaining)[0]:
                lines.append(proc.stdout.readline().decode().strip())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    killed_folder = lines[0]
    written = os.listdir(killed_folder)
    assert 4 <= len(written) < 50  # killed midway, its files left behind
    assert versioned.versions(fs, location) == sorted([previous, Path(killed_folder).name[2:]])

    pointer = versioned.read_pointer(fs, location)
    assert pointer["version"] == previous and pointer["meta"] == {"i": 0}
    reader = Reader(fs, location)
    assert reader.read_once() == 0 and not reader.errors
    assert not any(killed_folder in f for f in versioned.data_files(fs, location, None))

    versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(2, j) for j in range(N_FILES)},
                            meta={"i": 2})
    assert not os.path.exists(killed_folder)
    current = versioned.read_pointer(fs, location)["version"]
    assert versioned.versions(fs, location) == [previous, current]
    assert reader.read_once() == 2 and not reader.errors


# ---------------------------------------------------------------- 4. retention


def test_only_the_current_and_the_previous_version_remain(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "dt=2024-03-01")
    ids = []
    for i in range(3):
        pointer = versioned.publish_files(fs, location, {"a.txt": f"{i}", "b.txt": f"{i}"}, meta={"i": i})
        ids.append(pointer["version"])
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert versioned.versions(fs, location) == ids[1:]
    assert sorted(os.listdir(location)) == ["_current.json", f"v={ids[1]}", f"v={ids[2]}"]
    pointer = versioned.read_pointer(fs, location)
    assert pointer["version"] == ids[2] and pointer["paths"] == [f"v={ids[2]}"]
    assert pointer["files"] == [f"v={ids[2]}/a.txt", f"v={ids[2]}/b.txt"]
    assert versioned.resolve(fs, location) == [os.path.join(location, f"v={ids[2]}")]
    assert versioned.data_files(fs, location, ".txt") == [os.path.join(location, f"v={ids[2]}", n) for n in ("a.txt", "b.txt")]


def test_a_reader_of_the_previous_version_can_finish_until_the_publish_after_next(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "day")
    versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(0, j) for j in range(N_FILES)}, meta={"i": 0})
    slow = versioned.read_pointer(fs, location)  # a reader resolved version 0 ...
    versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(1, j) for j in range(N_FILES)}, meta={"i": 1})
    files = versioned.data_files(fs, location, ".txt", pointer=slow)  # ... and still reads it whole
    assert [parse(fs.read_bytes(f)) for f in files] == [(0, j) for j in range(N_FILES)]
    versioned.publish_files(fs, location, {f"part-{j:05d}.txt": content(2, j) for j in range(N_FILES)}, meta={"i": 2})
    with pytest.raises(FileNotFoundError):  # two publishes later it is gone: read the pointer again
        fs.read_bytes(files[0])
    assert Reader(fs, location).read_once() == 2


def test_meta_filled_in_the_block_hidden_files_skipped_and_subfolders_listed(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "day")
    meta = {}
    with versioned.publish(fs, location, meta) as folder:
        Path(folder, "k=1").mkdir()
        Path(folder, "k=1", "part-0.parquet").write_bytes(b"p")
        Path(folder, "_SUCCESS").write_bytes(b"")
        Path(folder, ".part-0.parquet.crc").write_bytes(b"")
        meta["rows"] = 7
    pointer = versioned.read_pointer(fs, location)
    assert pointer["meta"] == {"rows": 7}
    assert pointer["files"] == [f"v={pointer['version']}/k=1/part-0.parquet"]
    assert pointer["written_at"].endswith("+00:00")


def test_an_exception_in_the_block_removes_the_new_version_and_keeps_the_pointer(tmp_path):
    fs, location = LocalFS(), str(tmp_path / "day")
    first = versioned.publish_files(fs, location, {"a.txt": "1"})
    with pytest.raises(RuntimeError, match="boom"):
        with versioned.publish(fs, location) as folder:
            Path(folder, "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert not os.path.exists(folder)
    assert versioned.read_pointer(fs, location) == first
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        with versioned.publish(fs, location, meta={"when": object()}) as folder:
            Path(folder, "a.txt").write_text("3")
    assert not os.path.exists(folder) and versioned.read_pointer(fs, location) == first
    with pytest.raises(TypeError, match="must be a dict"):
        with versioned.publish(fs, location, meta=[1]) as folder:
            pass
    assert not os.path.exists(folder) and versioned.read_pointer(fs, location) == first


# ---------------------------------------------------------------- 5. manifests, removal, absence, corruption


def test_switch_to_folders_outside_the_location(tmp_path):
    fs = LocalFS()
    state, location = tmp_path / "state", str(tmp_path / "state" / "address_state" / "dt=2024-03-02")
    base, delta = state / "base" / "dt=2024-03-01", state / "deltas" / "dt=2024-03-02"
    for folder, names in ((base, ["part-0.parquet", "part-1.parquet"]), (delta, ["part-0.parquet"])):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"x")
        (folder / "_SUCCESS").write_bytes(b"")
    own = versioned.publish_files(fs, location, {"part-0.parquet": b"own"})  # an own version, then a manifest
    own_folder = os.path.join(location, f"v={own['version']}")
    pointer = versioned.switch(fs, location, [str(base), str(delta), f"v={own['version']}"], meta={"kind": "manifest"})
    assert versioned.read_pointer(fs, location) == pointer
    assert versioned.resolve(fs, location) == [str(base), str(delta), own_folder]
    assert versioned.data_files(fs, location) == sorted(
        [str(base / "part-0.parquet"), str(base / "part-1.parquet"), str(delta / "part-0.parquet"),
         os.path.join(own_folder, "part-0.parquet")])
    # the next switch keeps the own version (named by the one it replaced) one more cycle
    versioned.switch(fs, location, [str(base)])
    assert versioned.versions(fs, location) == [own["version"]]
    versioned.switch(fs, location, [str(delta)])
    assert versioned.versions(fs, location) == []
    assert base.exists() and delta.exists()  # folders outside the location are never removed
    with pytest.raises(FileNotFoundError, match=re.escape(f"switch of {location}: the folder") + ".*does not exist"):
        versioned.switch(fs, location, [str(state / "missing")])
    with pytest.raises(ValueError, match="non-empty list"):
        versioned.switch(fs, location, str(base))
    assert versioned.resolve(fs, location) == [str(delta)]


def test_remove_drops_the_pointer_then_the_versions(tmp_path):
    fs = ObjectStoreFS(tmp_path / "store")
    location = fs.uri("predictions/dt=2024-03-01")
    for i in range(2):
        versioned.publish_files(fs, location, {"a.txt": str(i)})
    fs.write_bytes(fs.uri("predictions/dt=2024-03-02/_current.json"), b"{}")  # a neighbour
    deleted = []
    fs.hook = lambda op, path: deleted.append(path) if op == "delete" else None
    versioned.remove(fs, location)
    assert deleted[0] == location + "/_current.json"  # invisible first, then cleaned up
    assert len(deleted) == 3
    assert not versioned.exists(fs, location) and not fs.exists(location)
    assert versioned.data_files(fs, location) == [] and versioned.resolve(fs, location) is None
    assert fs.exists(fs.uri("predictions/dt=2024-03-02/_current.json"))
    versioned.remove(fs, location)  # removing an absent location is fine
    local = LocalFS()
    day = str(tmp_path / "local" / "dt=2024-03-01")
    versioned.publish_files(local, day, {"a.txt": "1"})
    versioned.remove(local, day)
    assert not os.path.exists(day)


def test_absent_locations_even_with_leftover_versions(tmp_path):
    fs = LocalFS()
    for location in (str(tmp_path / "never"), str(tmp_path / "leftover")):
        if location.endswith("leftover"):
            Path(location, "v=20240301T000000.000000Z-00000000").mkdir(parents=True)
            Path(location, "v=20240301T000000.000000Z-00000000", "part-0.parquet").write_bytes(b"x")
        assert versioned.read_pointer(fs, location) is None
        assert versioned.resolve(fs, location) is None
        assert versioned.data_files(fs, location) == []
        assert not versioned.exists(fs, location)


@pytest.mark.parametrize("body, problem", [(b"not json{", "is not JSON"), (b"\xff\xfe", "is not JSON"),
                                           (b'{"version": "x"}', "not a valid pointer"),
                                           (b"[1, 2]", "not a JSON object")])
def test_a_corrupt_pointer_is_a_clear_error_naming_the_location(tmp_path, body, problem):
    fs, location = LocalFS(), str(tmp_path / "features" / "dt=2024-03-01")
    fs.write_bytes(os.path.join(location, "_current.json"), body)
    for read in (versioned.read_pointer, versioned.resolve, versioned.data_files, versioned.exists):
        with pytest.raises(PointerError, match=problem) as info:
            read(fs, location)
        assert f"{location}/_current.json" in str(info.value) and "re-run the step" in str(info.value)
    versioned.publish_files(fs, location, {"a.txt": "fixed"})  # a publish replaces it
    assert versioned.data_files(fs, location, ".txt") and versioned.exists(fs, location)


def test_version_ids_sort_by_time():
    import datetime as dt

    early = versioned.new_version_id(dt.datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=dt.timezone.utc))
    late = versioned.new_version_id(dt.datetime(2024, 3, 2, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert early.startswith("20240301T235959.999999Z-") and late.startswith("20240301T230000.000000Z-")
    assert late < early and len(early.split("-")[1]) == 8


# ---------------------------------------------------------------- 6. Hadoop's FileSystem (a real SparkSession)


@pytest.fixture
def hadoop_spark(spark):
    """The suite's one local SparkSession (tests/conftest.py)."""
    return spark


def all_names(root) -> list[str]:
    return [name for _, dirs, files in os.walk(root) for name in dirs + files]


def test_hadoop_fs_publish_twice_and_read_back_with_spark(hadoop_spark, tmp_path):
    fs = HadoopFS(hadoop_spark)
    root = tmp_path / "bucket"
    location = f"file://{root}/features/address_features/dt=2024-03-01"
    ids = []
    for run, rows in enumerate(([(1, "a"), (2, "b")], [(3, "c"), (4, "d"), (5, "e")])):
        df = hadoop_spark.createDataFrame(rows, "n INT, s STRING")
        meta = {}
        with versioned.publish(fs, location, meta) as folder:
            df.repartition(2).write.mode("overwrite").parquet(folder)
            meta["rows"] = len(rows)
        ids.append(versioned.read_pointer(fs, location)["version"])
        files = versioned.data_files(fs, location)
        assert files and all(f.startswith(f"{location}/v={ids[-1]}/part-") for f in files)
        back = hadoop_spark.read.parquet(*files)
        assert sorted(map(tuple, back.collect())) == rows
    assert versioned.read_pointer(fs, location)["meta"] == {"rows": 3}
    assert versioned.versions(fs, location) == ids
    assert not any(n.endswith(".crc") or ".tmp-" in n for n in all_names(root)), all_names(root)
    local_view = json.loads((root / "features/address_features/dt=2024-03-01/_current.json").read_text())
    assert local_view == versioned.read_pointer(LocalFS(), str(root / "features/address_features/dt=2024-03-01"))
    assert fs.list_dir(f"file://{root}/nowhere") == []
    with pytest.raises(FileNotFoundError):
        fs.read_bytes(f"file://{root}/nowhere/x")
    versioned.remove(fs, location)
    assert not versioned.exists(fs, location) and not os.path.exists(root / "features/address_features/dt=2024-03-01")


def test_hadoop_fs_pointer_rewrites_are_atomic_on_local(hadoop_spark, tmp_path):
    """A reader of the file (plain os) never finds it missing or half written while HadoopFS
    rewrites it: a rename over, not a delete then a rename, and not an in-place overwrite."""
    fs = HadoopFS(hadoop_spark)
    target = tmp_path / "day" / "_current.json"
    bodies = [json.dumps({"n": n, "pad": "x" * (200_000 if n % 2 else 10)}).encode() for n in range(60)]
    fs.write_bytes(str(target), bodies[0])  # a bare path: the default (local) file system
    problems, reads, stop = [], [0], threading.Event()

    def poll():
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                data = target.read_bytes()
            except FileNotFoundError:
                problems.append("missing")
                continue
            if data not in bodies:
                problems.append(f"torn ({len(data)} bytes)")
            reads[0] += 1

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        for body in bodies[1:]:
            fs.write_bytes(f"file://{target}", body)
    finally:
        stop.set()
        thread.join(10)
    assert not problems, problems[:5]
    assert reads[0] > 60
    assert target.read_bytes() == bodies[-1]
    assert sorted(os.listdir(target.parent)) == ["_current.json"]  # no temp files, no .crc


def test_hadoop_fs_refuses_a_scheme_without_a_known_atomic_write(hadoop_spark):
    fs = HadoopFS(hadoop_spark)
    with pytest.raises(ValueError, match="'hdfs' file system"):
        fs.write_bytes("hdfs://namenode:8020/day/_current.json", b"{}")
