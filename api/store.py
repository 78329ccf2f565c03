"""The serving store: the snapshot in force, resolved from its pointer, and the queries the routes ask.

`SnapshotStore` reads `serving/_current.json` (written last by `steps/publish_serving.py`, see
`io/versioned.py`), opens the snapshot it names (a DuckDB file, read-only, for history, pools,
candidates; the memory-mapped document index of `io/doc_index.py` for the address lookups) and
polls the pointer every few seconds: a new day is picked up without a restart. A
new snapshot replaces the old one only once it opened and answered its checks; if it fails,
the previous one keeps serving and `last_error` says why (shown by /readyz). A request takes
`store.current` once and asks that one `Snapshot` everything, so it never mixes two days.

Every query is parameterised; the only SQL text built here is from constants of this module.
On Cloud Storage (`gs://`) the snapshot's files are copied to a local cache folder first, except
the shards of a sharded document index (the gcp target's, `io/sharded_index.py`): a lookup reads
its document from the bucket by one ranged GET.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import orjson

from pool_classifier import datasets
from pool_classifier.io import doc_index, sharded_index, versioned

log = logging.getLogger(__name__)

SNAPSHOT_LAYOUT = "3"  # steps/publish_serving.py's SNAPSHOT_LAYOUT (not imported: it pulls in the registry)
_TABLES = {"scores", "history", "labels", "block_pools", "pool_days", "pools", "candidates", "meta"}
_DAY_DIR = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/")
_INT64 = 2 ** 63


class SnapshotError(RuntimeError):
    """A snapshot that cannot be served (missing, unreadable, of another layout)."""


def _loads(doc: bytes) -> dict:
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:  # an integer beyond 64 bits: the standard parser takes it
        return json.loads(doc)


def _plain(value):
    """DuckDB values as JSON-ready Python: exact satoshi sums as int, dates as ISO text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < _INT64 else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclass
class Snapshot:
    """One day's snapshot, open read-only. Thread-safe: each thread queries its own cursor."""

    day: str
    version: str
    folder: str
    meta: dict
    con: duckdb.DuckDBPyConnection
    docs: doc_index.DocIndex
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def open(cls, folder: str, version: str, fs: versioned.FileSystem | None = None,
             remote: str | None = None) -> "Snapshot":
        """The snapshot in the local `folder` (its DuckDB file); a sharded document index is read
        where it was published, `remote` through `fs` (default: in `folder`, from this disk)."""
        file = os.path.join(folder, datasets.SERVING_FILE)
        if not os.path.exists(file):
            raise SnapshotError(f"no {datasets.SERVING_FILE} in {folder}")
        try:
            con = duckdb.connect(file, read_only=True)
            tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if not _TABLES <= tables:
                raise SnapshotError(f"{file} lacks the tables {sorted(_TABLES - tables)}")
            meta = json.loads(con.execute("SELECT body FROM meta").fetchone()[0])
        except duckdb.Error as exc:
            raise SnapshotError(f"{file} cannot be read by DuckDB ({exc})") from None
        if str(meta.get("layout")) != SNAPSHOT_LAYOUT:
            con.close()
            raise SnapshotError(f"{file} has layout {meta.get('layout')!r}; this API reads layout "
                                f"{SNAPSHOT_LAYOUT!r}: deploy the API of that layout or re-publish")
        con.execute("SELECT count(*) FROM scores WHERE address = ?", [""]).fetchone()
        try:
            if meta.get("doc_index", "mmap") == "sharded":
                docs = sharded_index.ShardedIndex(fs or versioned.LocalFS(), remote or folder)
            else:
                docs = doc_index.DocIndex(folder)
        except (OSError, ValueError, KeyError) as exc:
            con.close()
            raise SnapshotError(f"the document index of {folder} cannot be read ({exc})") from None
        if len(docs) != meta["figures"]["documents"]:
            docs.close()
            con.close()
            raise SnapshotError(f"the document index of {folder} holds {len(docs)} documents; its meta says "
                                f"{meta['figures']['documents']}")
        return cls(meta["ds"], version, folder, meta, con, docs)

    # ------------------------------------------------------------ queries

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
        return cur

    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        cur = self._cursor()
        result = cur.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [{n: _plain(v) for n, v in zip(names, row)} for row in result.fetchall()]

    @property
    def feature_columns(self) -> list[str]:
        return list(self.meta["features"])

    def addresses(self, addresses: list[str]) -> dict[str, dict]:
        """address → its document (latest score, profile, features, known pools, first/last seen),
        for those scored or labelled; an address neither scored nor labelled is absent. From the
        memory-mapped document index: no query, no lock, microseconds each."""
        names = self.feature_columns
        found = self.docs.get_many(addresses, _loads)
        for doc in found.values():
            doc.pop("history", None)  # a sharded snapshot's: answered by history()
            doc["features"] = dict(zip(names, doc.pop("feature_values", None) or ()))
            doc["pools"] = doc.get("pools") or []
        return found

    def history(self, address: str) -> list[dict]:
        if self.meta.get("doc_index") == "sharded":  # in the document: the DuckDB file holds no history
            doc = self.docs.get(address, _loads)
            return (doc or {}).get("history") or []
        return self._rows("SELECT day, score, label, model_version FROM history WHERE address = ? ORDER BY day",
                          [address])

    def pools(self) -> list[dict]:
        return self._rows("SELECT pool_id, pool_name, blocks, labelled, labelled_predicted FROM pools "
                          "ORDER BY blocks DESC, labelled DESC, pool_id")

    def pool(self, pool_id: int) -> dict | None:
        rows = self._rows("SELECT pool_id, pool_name, blocks, labelled, labelled_predicted FROM pools "
                          "WHERE pool_id = ?", [pool_id])
        return rows[0] if rows else None

    def pool_days(self, pool_id: int | None = None) -> list[dict]:
        if pool_id is None:
            return self._rows("SELECT day, pool_id, pool_name, blocks, share FROM pool_days ORDER BY day, pool_id")
        return self._rows("SELECT day, pool_id, pool_name, blocks, share FROM pool_days WHERE pool_id = ? "
                          "ORDER BY day", [pool_id])

    def pool_addresses(self, pool_id: int, limit: int) -> list[dict]:
        return self._rows("""
            SELECT l.address, l.label_kind, l.label_source, l.coinbase_outputs, s.score, s.label, s.scored_day
            FROM labels l LEFT JOIN scores s USING (address) WHERE l.pool_id = ?
            ORDER BY l.coinbase_outputs DESC, l.address LIMIT ?""", [pool_id, limit])

    def candidates(self, limit: int, offset: int, min_score: float) -> tuple[int, list[dict]]:
        total = self._cursor().execute("SELECT count(*) FROM candidates WHERE score >= ?", [min_score]).fetchone()[0]
        rows = self._rows("""
            SELECT address, score, first_flagged, scored_day, model_version, profile, anomaly_score, is_anomaly
            FROM candidates WHERE score >= ? ORDER BY score DESC, address LIMIT ? OFFSET ?""",
                          [min_score, limit, offset])
        return total, rows

    def model_file(self, version: str, name: str) -> Path | None:
        """A file of a model version copied into the snapshot (report, plots), or None."""
        folder = Path(self.folder) / "models"
        known = {p.parent.name: p.parent for p in folder.glob("*/metadata.json")}
        if version not in known:
            return None
        files = {p.name: p for p in known[version].iterdir() if p.is_file()}
        return files.get(name)

    def model_metadata(self, version: str | None) -> dict | None:
        file = self.model_file(version, "metadata.json") if version else None
        return json.loads(file.read_text()) if file else None


class SnapshotStore:
    """The snapshot in force under the bucket's `serving/`, polled for a new one; others by day,
    on demand (`?as_of=`)."""

    def __init__(self, bucket: str, fs: versioned.FileSystem | None = None, poll_seconds: float = 2.0,
                 cache_dir: str | None = None, keep_days: int = 4):
        self.where = datasets.Bucket(bucket.rstrip("/"))
        self.root = datasets.serving_root(self.where)
        self.fs = fs or versioned.for_location(self.root)
        self.poll_seconds = poll_seconds
        self.cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "pool-api-cache")
        self.current: Snapshot | None = None
        self.previous: Snapshot | None = None  # kept one switch, for requests still reading it
        self.last_error: str | None = None
        self.switches = 0
        self._pointer_raw: bytes | None = None
        self._lock = threading.Lock()
        self._days: OrderedDict[str, Snapshot] = OrderedDict()
        self._keep_days = keep_days
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ resolving a pointer

    def _local_folder(self, location: str, pointer: dict) -> str:
        """The snapshot's folder on this disk: in place locally, else copied to the cache."""
        folder = versioned.resolve(self.fs, location, pointer)[0]
        if "://" not in folder:
            return folder
        local = os.path.join(self.cache_dir, pointer["version"])
        if not os.path.exists(os.path.join(local, datasets.SERVING_FILE)):
            tmp = f"{local}.tmp-{os.getpid()}"
            for file in versioned.data_files(self.fs, location, suffix=None, pointer=pointer):
                rel = file[len(folder):].lstrip("/")
                if rel.startswith(f"{sharded_index.FOLDER}/"):
                    continue  # the shards stay on the object store: each lookup one ranged GET
                os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
                Path(tmp, rel).write_bytes(self.fs.read_bytes(file))
            os.makedirs(self.cache_dir, exist_ok=True)
            os.replace(tmp, local)
        return local

    def _open(self, location: str, pointer: dict) -> Snapshot:
        # The serving root's pointer is a switch to a day's version: its meta names that version.
        remote = versioned.resolve(self.fs, location, pointer)[0]
        return Snapshot.open(self._local_folder(location, pointer), pointer["meta"].get("version", pointer["version"]),
                             fs=self.fs, remote=remote)

    def refresh(self) -> bool:
        """Read the pointer; switch to the snapshot it names if it is new and opens. True if switched."""
        with self._lock:
            try:
                raw = self.fs.read_bytes(self.fs.join(self.root, versioned.POINTER))
            except FileNotFoundError:
                if self.current is None:
                    self.last_error = f"no snapshot published yet: {self.root}/{versioned.POINTER} does not exist"
                return False
            except OSError as exc:
                self.last_error = f"cannot read {self.root}/{versioned.POINTER} ({exc})"
                return False
            if raw == self._pointer_raw:
                return False
            try:
                pointer = versioned._validate(json.loads(raw.decode("utf-8")), self.root)
                snapshot = self._open(self.root, pointer)
            except (ValueError, OSError, SnapshotError, duckdb.Error) as exc:
                self.last_error = f"the snapshot named by {self.root}/{versioned.POINTER} was not loaded ({exc}); " \
                                  + ("still serving " + self.current.day if self.current else "nothing served yet")
                log.warning(self.last_error)
                self._pointer_raw = raw
                return False
            self._pointer_raw = raw
            self.previous, self.current = self.current, snapshot
            self.last_error = None
            self.switches += 1
            log.info("serving snapshot %s (version %s)", snapshot.day, snapshot.version)
            return True

    def days(self) -> list[str]:
        """The days with a published snapshot."""
        return sorted(m.group(1) for name in self.fs.list_dir(self.root) if (m := _DAY_DIR.fullmatch(name)))

    def for_day(self, day: str) -> Snapshot | None:
        """The snapshot answering as of `day`: the newest published day ≤ `day` (None if none)."""
        current = self.current
        if current is not None and day >= current.day:
            return current
        eligible = [d for d in self.days() if d <= day]
        if not eligible:
            return None
        best = eligible[-1]
        if current is not None and current.day == best:
            return current
        with self._lock:
            # The day's pointer is read on every call (one small file): a cached day that was
            # republished since is reopened, and one that retention removed is dropped, never read.
            location = datasets.serving_dir(self.where, best)
            pointer = versioned.read_pointer(self.fs, location)
            cached = self._days.pop(best, None)
            if pointer is None:
                return None
            if cached is not None and cached.version == pointer["version"]:
                self._days[best] = cached
                return cached
            snapshot = self._open(location, pointer)
            self._days[best] = snapshot
            while len(self._days) > self._keep_days:
                self._days.popitem(last=False)
            return snapshot

    # ------------------------------------------------------------ polling

    def start(self) -> None:
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="snapshot-poller", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the poller must outlive any surprise; the old snapshot keeps serving
                self.last_error = f"polling {self.root} failed ({type(exc).__name__}: {exc})"
                log.exception("snapshot poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
