"""Versioned outputs with a pointer written last: a reader sees one version whole, on a local
disk and on Cloud Storage alike, without any folder rename.

Layout of a *dataset location* L (a path or a URI, e.g. `<bucket>/features/address_features/dt=2024-03-01`)::

    L/v=20240301T101500.123456Z-1f2e3d4c/part-00000.parquet   one immutable version per write
    L/v=20240302T091000.654321Z-a9b8c7d6/part-00000.parquet   (the id sorts by UTC time, then 8 random hex)
    L/_current.json                                          the pointer: which version is in force

    {"version": "<id>", "paths": ["v=<id>"], "files": ["v=<id>/part-00000.parquet", ...],
     "written_at": "<ISO UTC>", "meta": {...}}

`paths` are the folders in force and `files` their data files, each relative to L, or absolute
(a `/path` or a `scheme://` URI): `switch` writes a manifest naming folders written elsewhere
(e.g. a base snapshot plus daily deltas). A version's files are never changed once the pointer
names it; a new write is a new version.

Why the pointer is written last: a version folder is filled file by file, which no store shows
to readers in one step, and a folder rename is not atomic on Cloud Storage (it is a copy and a
delete of every object, so a reader can list half a folder, or the old and the new files
mixed). A reader never lists L: it reads the pointer, one object, and then exactly the files
it names. Until the new pointer is written no reader knows the new version; from then on every
reader that reads the pointer gets the new version, already complete. A location without a
pointer is absent, even if it holds the leftover folder of a killed writer.

Why the previous version is kept one cycle: a reader that read the old pointer a moment before
the switch is still reading the old version's files; deleting them at once would break it. So
a publish removes every version except the new one and the one it replaced. A reader that
resolved the pointer is safe until the publish after next completes; one slower than that gets
FileNotFoundError and should read the pointer again (`read_pointer`, `data_files(pointer=...)`).

The guarantee, given that one object write is atomic (`FileSystem.write_bytes`):
- on a local disk, `LocalFS.write_bytes` writes a hidden temporary file beside, fsyncs it and
  `os.replace`s it over the pointer: a POSIX rename, atomic; `HadoopFS` does the same on the
  `file` scheme through Hadoop's raw local file system (`File.renameTo`, i.e. rename(2));
- on Cloud Storage an object upload becomes visible only when it completes, whole, and
  reads and listings are strongly consistent: `HadoopFS` on `gs://` writes the pointer with one
  `create(overwrite=True)`/`close`;
so every reader sees either the previous complete version or the new complete version, never
a part of one, and nothing at all before the first publish. One writer per location at a time
(an Airflow task try); a writer killed midway leaves an invisible version folder, removed by the
next successful publish. Versions whose id sorts after the new one are left alone (another
writer's work in progress).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import posixpath
import secrets
import shutil
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

log = logging.getLogger(__name__)

POINTER = "_current.json"
VERSION_PREFIX = "v="
_TMP_MARK = ".tmp-"


class PointerError(ValueError):
    """A location's pointer cannot be used (not JSON, or not a pointer)."""


class FileSystem(Protocol):
    """The few operations the mechanism needs. Paths are strings (a path or a URI)."""

    def exists(self, path: str) -> bool:
        """True for a file or a folder (on an object store: an object or a prefix of one)."""

    def list_dir(self, path: str) -> list[str]:
        """Names of the direct children, a folder's name ending with "/"; [] if absent."""

    def makedirs(self, path: str) -> None:
        """Create the folder and its parents (a no-op on an object store)."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write one file atomically: a reader sees the old content or the new, whole."""

    def read_bytes(self, path: str) -> bytes:
        """The content; FileNotFoundError if absent."""

    def delete(self, path: str) -> None:
        """Delete a file, or a folder recursively; nothing if absent."""

    def join(self, base: str, *names: str) -> str:
        """`base` / names."""


# ---------------------------------------------------------------- versions and pointers


def new_version_id(now: dt.datetime | None = None) -> str:
    """`<UTC yyyymmddTHHMMSS.ffffffZ>-<8 random hex>`: sorts by time, unique."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(4)


def _loc(location: str | os.PathLike) -> str:
    text = os.fspath(location)
    return text.rstrip("/") if len(text) > 1 and not text.endswith("://") else text


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or "://" in path


def _split_uri(path: str) -> tuple[str, str]:
    """("scheme://netloc", "/the/path") of a URI; ("", path) of a plain path."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        netloc, _, tail = rest.partition("/")
        return f"{scheme}://{netloc}", "/" + tail
    return "", path


def _absolute(fs: FileSystem, location: str, path: str) -> str:
    """`path` as named in a pointer, made absolute: relative ones (`v=<id>`, or `../delta/…` in
    a manifest) are resolved against the location, `..` collapsed (object stores know no `..`)."""
    if _is_absolute(path):
        return path
    head, tail = _split_uri(fs.join(location, path))
    return head + posixpath.normpath(tail)


def relative_to(location: str | os.PathLike, folder: str | os.PathLike) -> str:
    """`folder` named relative to `location` (for a manifest that must survive a copy of the
    bucket): `…/address_state/dt=d` and `…/address_state/delta/dt=e/v=x` → `../delta/dt=e/v=x`."""
    (head_a, tail_a), (head_b, tail_b) = _split_uri(_loc(location)), _split_uri(_loc(folder))
    if head_a != head_b:
        raise ValueError(f"{folder} is not on the same file system as {location}")
    return posixpath.relpath(tail_b, tail_a)


def _pointer_path(fs: FileSystem, location: str) -> str:
    return fs.join(location, POINTER)


def _what_to_do(location: str) -> str:
    return (f"re-run the step that writes {location} to publish a new version over it, "
            f"or drop it with versioned.remove(fs, {location!r}) so that the location is absent")


def _validate(pointer: Any, location: str) -> dict:
    problems = []
    if not isinstance(pointer, dict):
        problems.append("not a JSON object")
    else:
        if not isinstance(pointer.get("version"), str) or not pointer.get("version"):
            problems.append('no "version" string')
        paths = pointer.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            problems.append('"paths" is not a non-empty list of strings')
        files = pointer.get("files")
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            problems.append('"files" is not a list of strings')
        if not isinstance(pointer.get("meta", {}), dict):
            problems.append('"meta" is not an object')
    if problems:
        raise PointerError(f"the pointer {location}/{POINTER} is not a valid pointer ({'; '.join(problems)}): "
                           + _what_to_do(location))
    return pointer


def read_pointer(fs: FileSystem, location: str | os.PathLike) -> dict | None:
    """The pointer of `location`, or None if it has none (the location is absent).

    Raises PointerError (naming the location) if the pointer is not JSON or not a pointer.
    """
    location = _loc(location)
    try:
        raw = fs.read_bytes(_pointer_path(fs, location))
    except FileNotFoundError:
        return None
    try:
        pointer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PointerError(f"the pointer {location}/{POINTER} is not JSON ({exc}; {len(raw)} bytes): "
                           + _what_to_do(location)) from None
    return _validate(pointer, location)


def resolve(fs: FileSystem, location: str | os.PathLike, pointer: dict | None = None) -> list[str] | None:
    """The absolute folders in force at `location`, or None if it is absent."""
    location = _loc(location)
    pointer = read_pointer(fs, location) if pointer is None else _validate(pointer, location)
    if pointer is None:
        return None
    return [_absolute(fs, location, p) for p in pointer["paths"]]


def data_files(fs: FileSystem, location: str | os.PathLike, suffix: str | None = ".parquet",
               pointer: dict | None = None) -> list[str]:
    """The absolute data files in force at `location` ending with `suffix` (None: all), sorted;
    [] if the location is absent. Pass the `pointer` you read to get the files of that very
    version (e.g. with its meta)."""
    location = _loc(location)
    pointer = read_pointer(fs, location) if pointer is None else _validate(pointer, location)
    if pointer is None:
        return []
    files = (_absolute(fs, location, f) for f in pointer["files"])
    return sorted(f for f in files if not suffix or f.endswith(suffix))


def exists(fs: FileSystem, location: str | os.PathLike) -> bool:
    """True if `location` has a pointer (a version in force)."""
    return read_pointer(fs, location) is not None


def versions(fs: FileSystem, location: str | os.PathLike) -> list[str]:
    """The ids of the version folders present at `location` (in force or not), sorted."""
    location = _loc(location)
    return sorted(name[len(VERSION_PREFIX):-1] for name in fs.list_dir(location)
                  if name.startswith(VERSION_PREFIX) and name.endswith("/"))


# ---------------------------------------------------------------- writers


def _hidden(name: str) -> bool:
    """Hadoop's and Spark's convention: _SUCCESS, .crc, _temporary/ are not data."""
    return name.startswith(("_", "."))


def _walk(fs: FileSystem, folder: str, prefix: str = "") -> list[str]:
    """Data files under `folder`, relative to it, recursively, hidden ones skipped."""
    found = []
    for name in sorted(fs.list_dir(folder)):
        if _hidden(name):
            continue
        if name.endswith("/"):
            found += _walk(fs, fs.join(folder, name[:-1]), prefix + name)
        else:
            found.append(prefix + name)
    return found


def _best_effort_delete(fs: FileSystem, path: str) -> None:
    try:
        fs.delete(path)
    except Exception as exc:  # cleanup must not hide the original error
        log.warning("could not remove %s (%s); it is invisible to readers and the next publish removes it", path, exc)


def _referenced_versions(pointer: dict | None) -> set[str]:
    """Names (`v=<id>`) of L's own version folders that `pointer` names."""
    if not pointer:
        return set()
    names = set()
    for path in pointer.get("paths", []):
        if isinstance(path, str) and not _is_absolute(path):
            first = path.strip("/").split("/")[0]
            if first.startswith(VERSION_PREFIX):
                names.add(first)
    return names


def _lenient_previous(fs: FileSystem, location: str) -> dict | None:
    try:
        return read_pointer(fs, location)
    except PointerError as exc:
        log.warning("%s; publishing over it", exc)
        return None


def _commit(fs: FileSystem, location: str, pointer: dict) -> dict:
    """Write the pointer (atomically, last), then drop the versions no longer needed."""
    if not isinstance(pointer["meta"], dict):
        raise TypeError(f"the meta of the new version of {location} must be a dict, got {type(pointer['meta']).__name__}")
    try:
        body = json.dumps(pointer, indent=1, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the meta of the new version of {location} is not JSON-serialisable ({exc}): "
                        "pass plain dicts, lists, strings and numbers") from None
    previous = _lenient_previous(fs, location)
    fs.write_bytes(_pointer_path(fs, location), body)
    keep = _referenced_versions(pointer) | _referenced_versions(previous)
    new_id = pointer["version"]
    for name in fs.list_dir(location):
        stale_version = (name.startswith(VERSION_PREFIX) and name.endswith("/") and name[:-1] not in keep
                         and name[len(VERSION_PREFIX):-1] < new_id)
        stale_pointer_tmp = name.startswith("." + POINTER + _TMP_MARK)  # of a killed pointer write
        if stale_version or stale_pointer_tmp:
            _best_effort_delete(fs, fs.join(location, name.rstrip("/")))
    return pointer


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@contextlib.contextmanager
def publish(fs: FileSystem, location: str | os.PathLike, meta: dict | None = None) -> Iterator[str]:
    """Yield a new, empty version folder of `location` to write the data files into.

    On a normal exit: its files are listed (hidden ones such as _SUCCESS skipped), the pointer
    naming them is written atomically, and every version but the new one and the one it replaced
    is removed. `meta` is read at the exit, so the block may fill in the dict it passed (row
    counts). On an exception: the new folder is removed (best effort), the pointer is untouched.
    A Spark job writes into the folder with `.mode("overwrite")` (the folder exists). A corrupt
    pointer already there is replaced (with a warning in the log): publishing is the repair.
    """
    location = _loc(location)
    meta = {} if meta is None else meta
    version = new_version_id()
    folder = fs.join(location, VERSION_PREFIX + version)
    fs.makedirs(folder)
    try:
        yield folder
    except BaseException:
        _best_effort_delete(fs, folder)
        raise
    try:
        rel = VERSION_PREFIX + version
        _commit(fs, location, {
            "version": version,
            "paths": [rel],
            "files": [f"{rel}/{name}" for name in _walk(fs, folder)],
            "written_at": _now_iso(),
            "meta": meta,
        })
    except BaseException:
        if _version_in_force(fs, location) != version:
            _best_effort_delete(fs, folder)
        raise


def _version_in_force(fs: FileSystem, location: str | os.PathLike) -> str | None:
    """The id of the version in force (None if absent or unreadable)."""
    try:
        pointer = read_pointer(fs, location)
    except (PointerError, OSError):
        return None
    return pointer["version"] if pointer else None


def publish_files(fs: FileSystem, location: str | os.PathLike, files: Mapping[str, bytes | str],
                  meta: dict | None = None) -> dict:
    """Small outputs (name → bytes, or str as UTF-8) as a new version; returns the pointer."""
    with publish(fs, location, meta) as folder:
        for name, data in sorted(files.items()):
            fs.write_bytes(fs.join(folder, name), data.encode("utf-8") if isinstance(data, str) else bytes(data))
    return read_pointer(fs, location)


def switch(fs: FileSystem, location: str | os.PathLike, paths: Sequence[str], meta: dict | None = None) -> dict:
    """Point `location` at folders written elsewhere (a manifest: e.g. a base snapshot plus
    deltas), each relative to `location` or absolute; every folder must exist. Their data files
    are listed now and recorded in the pointer. Returns the pointer."""
    location = _loc(location)
    if isinstance(paths, str) or not paths:
        raise ValueError(f"switch of {location}: paths must be a non-empty list of folders, got {paths!r}")
    files = []
    for path in paths:
        folder = _absolute(fs, location, path.rstrip("/"))
        if not fs.exists(folder):
            raise FileNotFoundError(f"switch of {location}: the folder {folder} does not exist; "
                                    "write it completely before switching the pointer to it")
        files += [f"{path.rstrip('/')}/{name}" for name in _walk(fs, folder)]
    return _commit(fs, location, {
        "version": new_version_id(),
        "paths": [p.rstrip("/") for p in paths],
        "files": files,
        "written_at": _now_iso(),
        "meta": {} if meta is None else meta,
    })


def remove(fs: FileSystem, location: str | os.PathLike) -> None:
    """Make `location` absent: drop the pointer first (readers see it absent at once), then every
    version folder, then the location itself if nothing else is left in it."""
    location = _loc(location)
    fs.delete(_pointer_path(fs, location))
    for name in fs.list_dir(location):
        if (name.startswith(VERSION_PREFIX) and name.endswith("/")) or name.startswith("." + POINTER + _TMP_MARK):
            fs.delete(fs.join(location, name.rstrip("/")))
    if fs.exists(location) and not fs.list_dir(location):
        fs.delete(location)


# ---------------------------------------------------------------- file systems


class LocalFS:
    """A local disk through os: `write_bytes` is a fsynced hidden temporary file beside, then
    os.replace (a POSIX rename, atomic)."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            with os.scandir(path) as entries:
                return sorted(e.name + "/" if e.is_dir() else e.name for e in entries)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def write_bytes(self, path: str, data: bytes) -> None:
        parent, name = os.path.split(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{name}{_TMP_MARK}{secrets.token_hex(6)}")
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise
        with contextlib.suppress(OSError):  # the rename itself durable (not needed for atomicity)
            fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def read_range(self, path: str, start: int, end: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def delete(self, path: str) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            def ignore_vanished(func, name, exc_info):
                if not issubclass(exc_info[0], FileNotFoundError):
                    raise exc_info[1]
            shutil.rmtree(path, onerror=ignore_vanished)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def join(self, base: str, *names: str) -> str:
        return os.path.join(os.fspath(base), *names)


class HadoopFS:
    """Hadoop's FileSystem of a running SparkSession (a local folder, `gs://`, …), through py4j;
    pyspark is not imported here, the session is passed in.

    `write_bytes` is atomic by the path's URI scheme: on `file`, a hidden temporary file then a
    rename over the target through the raw local file system (`File.renameTo`: rename(2), which
    replaces the target atomically; never a delete then a rename), with no checksum side files;
    on an object store (`gs`, `s3a`), one `create(overwrite=True)` and `close` (the object
    appears whole at close). Other schemes (e.g. `hdfs`) are refused: no atomic overwrite is
    known for them here.
    """

    OBJECT_STORES = frozenset({"gs", "s3a"})

    def __init__(self, spark: Any):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _resolve(self, path: str):
        """(Hadoop Path, FileSystem to use, scheme)."""
        hpath = self._jvm.org.apache.hadoop.fs.Path(path)
        scheme = hpath.toUri().getScheme()
        if scheme is None:  # a bare path: the default file system's scheme
            scheme = self._jvm.org.apache.hadoop.fs.FileSystem.getDefaultUri(self._conf).getScheme() or "file"
        if scheme != "file" and scheme not in self.OBJECT_STORES:
            raise ValueError(f"HadoopFS: {path} is on the {scheme!r} file system, for which no atomic "
                             f"single-file write is known here; use a local path or one of "
                             f"{sorted(self.OBJECT_STORES)}")
        fs = hpath.getFileSystem(self._conf)
        if scheme == "file":
            fs.setWriteChecksum(False)  # no .crc side files (also for Spark's writes on this JVM)
            with contextlib.suppress(Exception):  # LocalFileSystem wraps the raw one; it may be raw already
                fs = fs.getRawFileSystem()  # no checksum files read or written by us at all
        return hpath, fs, scheme

    @staticmethod
    def _not_found(exc: Exception) -> bool:
        java = getattr(exc, "java_exception", None)
        name = java.getClass().getName() if java is not None else type(exc).__name__
        return name.endswith("FileNotFoundException")

    def exists(self, path: str) -> bool:
        hpath, fs, _ = self._resolve(path)
        return bool(fs.exists(hpath))

    def list_dir(self, path: str) -> list[str]:
        hpath, fs, _ = self._resolve(path)
        try:
            if not fs.exists(hpath) or not fs.getFileStatus(hpath).isDirectory():
                return []
            statuses = fs.listStatus(hpath)
        except Exception as exc:
            if self._not_found(exc):
                return []
            raise
        return sorted(s.getPath().getName() + ("/" if s.isDirectory() else "") for s in statuses)

    def makedirs(self, path: str) -> None:
        hpath, fs, _ = self._resolve(path)
        fs.mkdirs(hpath)

    def write_bytes(self, path: str, data: bytes) -> None:
        hpath, fs, scheme = self._resolve(path)
        if scheme in self.OBJECT_STORES:
            out = fs.create(hpath, True)
            try:
                out.write(bytearray(data))
            finally:
                out.close()
            return
        Path = self._jvm.org.apache.hadoop.fs.Path
        tmp = Path(hpath.getParent(), f".{hpath.getName()}{_TMP_MARK}{secrets.token_hex(6)}")
        try:
            out = fs.create(tmp, True)
            try:
                out.write(bytearray(data))
                if out.hasCapability("hsync"):
                    out.hsync()
            finally:
                out.close()
            if not fs.rename(tmp, hpath):
                raise OSError(f"HadoopFS: could not rename {tmp.toString()} over {path}")
        except BaseException:
            with contextlib.suppress(Exception):
                fs.delete(tmp, False)
            raise

    def read_bytes(self, path: str) -> bytes:
        hpath, fs, _ = self._resolve(path)
        try:
            stream = fs.open(hpath)
        except Exception as exc:
            if self._not_found(exc):
                raise FileNotFoundError(path) from None
            raise
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def delete(self, path: str) -> None:
        hpath, fs, _ = self._resolve(path)
        fs.delete(hpath, True)

    def join(self, base: str, *names: str) -> str:
        return "/".join([os.fspath(base).rstrip("/"), *(n.strip("/") for n in names)])


class ObjectStoreFS:
    """A test double behaving like Cloud Storage, on a local folder: flat objects named by key
    (paths `obj://<bucket>/<key>`), each written atomically; no folders (a "folder" is a key
    prefix; `makedirs` does nothing); strongly consistent listing; NO rename (`rename` raises).

    `hook(op, path)` is called, then `delay` seconds slept, before each object operation
    (`write`, `copy`, `delete`), so tests can interleave readers with a writer.
    `copy_delete_rename(src, dst)` moves a folder as a Cloud Storage client does (copy every
    object, then delete every object): the negative control for a folder rename.
    """

    def __init__(self, root: str | os.PathLike, bucket: str = "bucket", delay: float = 0.0,
                 hook: Callable[[str, str], None] | None = None):
        self.root = os.fspath(root)
        self.bucket = bucket
        self.delay = delay
        self.hook = hook
        self._objects = os.path.join(self.root, "objects")
        self._tmp = os.path.join(self.root, "tmp")
        os.makedirs(self._objects, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)
        self._lock = threading.Lock()
        self.operations = 0
        self.range_reads = 0
        self.range_bytes = 0

    @property
    def prefix(self) -> str:
        return f"obj://{self.bucket}/"

    def uri(self, key: str) -> str:
        return self.prefix + key.lstrip("/")

    def _key(self, path: str) -> str:
        path = os.fspath(path)
        if not path.startswith(self.prefix):
            raise ValueError(f"ObjectStoreFS: {path} is not in {self.prefix}")
        return path[len(self.prefix):].strip("/")

    def _file(self, key: str) -> str:
        return os.path.join(self._objects, urllib.parse.quote(key, safe=""))

    def _keys(self) -> list[str]:
        return sorted(urllib.parse.unquote(name) for name in os.listdir(self._objects))

    def _under(self, key: str) -> list[str]:
        prefix = key + "/" if key else ""
        return [k for k in self._keys() if k.startswith(prefix)]

    def _op(self, op: str, key: str) -> None:
        with self._lock:
            self.operations += 1
        if self.hook is not None:
            self.hook(op, self.uri(key))
        if self.delay:
            time.sleep(self.delay)

    def _put(self, key: str, data: bytes) -> None:
        tmp = os.path.join(self._tmp, secrets.token_hex(8))
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, self._file(key))  # the double's own atomic upload, not a visible rename

    def exists(self, path: str) -> bool:
        key = self._key(path)
        return os.path.exists(self._file(key)) or bool(self._under(key))

    def list_dir(self, path: str) -> list[str]:
        key = self._key(path)
        names = set()
        for k in self._under(key):
            rest = k[len(key) + 1:] if key else k
            names.add(rest.split("/", 1)[0] + "/" if "/" in rest else rest)
        return sorted(names)

    def makedirs(self, path: str) -> None:
        self._key(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        key = self._key(path)
        self._op("write", key)
        self._put(key, bytes(data))

    def read_bytes(self, path: str) -> bytes:
        try:
            with open(self._file(self._key(path)), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise FileNotFoundError(path) from None

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object: a ranged GET (counted in `range_reads`, bytes in `range_bytes`)."""
        with self._lock:
            self.range_reads += 1
        try:
            with open(self._file(self._key(path)), "rb") as f:
                f.seek(start)
                data = f.read(end - start)
        except FileNotFoundError:
            raise FileNotFoundError(path) from None
        with self._lock:
            self.range_bytes += len(data)
        return data

    def delete(self, path: str) -> None:
        key = self._key(path)
        targets = ([key] if os.path.exists(self._file(key)) else []) + self._under(key)
        for k in targets:
            self._op("delete", k)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._file(k))

    def join(self, base: str, *names: str) -> str:
        return "/".join([os.fspath(base).rstrip("/"), *(n.strip("/") for n in names)])

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError(f"ObjectStoreFS: an object store has no rename ({src} -> {dst}); "
                                  "a folder 'rename' is copy_delete_rename, object by object")

    def copy_delete_rename(self, src_folder: str, dst_folder: str) -> None:
        """Move a folder object by object: copy each, then delete each (not atomic)."""
        src, dst = self._key(src_folder), self._key(dst_folder)
        keys = self._under(src)
        for k in keys:
            target = dst + k[len(src):]
            self._op("copy", target)
            with open(self._file(k), "rb") as f:
                self._put(target, f.read())
        for k in keys:
            self._op("delete", k)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._file(k))


class GcsFS:
    """Cloud Storage through google-cloud-storage (`gs://bucket/key` paths), for the Python side
    of the gcp target (the Composer worker: exports' pointers, loads' sources). An object upload
    appears whole when it completes and reads and listings are strongly consistent, so
    `write_bytes` is one upload; "folders" are key prefixes."""

    def __init__(self, client: Any = None):
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        self._client = client

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        parsed = urllib.parse.urlparse(path)
        if parsed.scheme != "gs":
            raise ValueError(f"GcsFS: {path} is not a gs:// URI")
        return parsed.netloc, parsed.path.lstrip("/")

    def _blobs(self, path: str, delimiter: str | None = None):
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key else ""
        return self._client.list_blobs(bucket, prefix=prefix, delimiter=delimiter), prefix

    def exists(self, path: str) -> bool:
        bucket, key = self._split(path)
        if self._client.bucket(bucket).blob(key).exists():
            return True
        blobs, _ = self._blobs(path)
        return any(True for _ in blobs)

    def list_dir(self, path: str) -> list[str]:
        blobs, prefix = self._blobs(path, delimiter="/")
        names = [b.name[len(prefix):] for b in blobs]
        folders = [p[len(prefix):] for p in blobs.prefixes]
        return sorted(n for n in names + folders if n)

    def makedirs(self, path: str) -> None:
        return None

    def write_bytes(self, path: str, data: bytes) -> None:
        bucket, key = self._split(path)
        self._client.bucket(bucket).blob(key).upload_from_string(bytes(data))

    def read_bytes(self, path: str) -> bytes:
        from google.api_core.exceptions import NotFound

        bucket, key = self._split(path)
        try:
            return self._client.bucket(bucket).blob(key).download_as_bytes()
        except NotFound:
            raise FileNotFoundError(path) from None

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object: one GET with a Range header (the client's `end` is inclusive)."""
        from google.api_core.exceptions import NotFound

        bucket, key = self._split(path)
        if end <= start:
            return b""
        try:
            return self._client.bucket(bucket).blob(key).download_as_bytes(start=start, end=end - 1)
        except NotFound:
            raise FileNotFoundError(path) from None

    def delete(self, path: str) -> None:
        bucket, key = self._split(path)
        blob = self._client.bucket(bucket).blob(key)
        if blob.exists():
            blob.delete()
            return
        blobs, _ = self._blobs(path)
        for b in blobs:
            b.delete()

    def join(self, base: str, *names: str) -> str:
        return "/".join([os.fspath(base).rstrip("/"), *(n.strip("/") for n in names)])


def read_range(fs: FileSystem, path: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file: one ranged GET on an object store (`fs.read_range`), a seek
    and a read on a disk; a file system without either reads the whole file (correct, slower)."""
    ranged = getattr(fs, "read_range", None)
    if ranged is not None:
        return ranged(path, start, end)
    return fs.read_bytes(path)[start:end]


def for_location(location: str | os.PathLike) -> FileSystem:
    """The file system of a location in Python: Cloud Storage for `gs://`, else the local disk."""
    return GcsFS() if os.fspath(location).startswith("gs://") else LocalFS()
