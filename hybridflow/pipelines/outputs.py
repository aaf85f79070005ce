"""The file outputs of one run: written aside, published on success, read only when published.

:class:`RunOutputs` is how :func:`~hybridflow.pipelines.run.run_pipeline`
writes a pipeline's file sinks (local paths, ``gs://``, ``s3://``: Beam's
FileSystems). The file sinks of a run are grouped by directory (``--output
DIR`` puts all of a pipeline's outputs in one); for each directory:

- **Before the job starts** the directory is checked: it must be writable
  (a marker ``_RUNNING`` is written, which also proves it) and must not hold
  an earlier run (a ``_SUCCESS``, or files named like one of this run's
  outputs) unless ``--overwrite`` is given. Each problem is one
  :class:`~hybridflow.errors.InvalidLocationError` line.
- **A bounded output** (``pcoll.is_bounded``) is written under
  ``DIR/.hybridflow-tmp-<run id>/``. When the job is DONE (and its dead
  letters are within ``--max_dead_letter_ratio``) its files are moved into
  DIR and ``DIR/_SUCCESS`` is written last.
- **An unbounded output** is written into DIR directly: Beam finalises each
  file (complete) as its window closes, so files appear while the job runs;
  ``_SUCCESS`` is written when the job ends cleanly (drained, or
  ``--duration`` reached). With ``--overwrite`` the earlier run's files are
  removed before the job starts, since the new files are published as they
  come.
- **A failed, cancelled or interrupted run publishes nothing**: its staging
  directory (with Beam's own temporary files in it) is removed, no
  ``_SUCCESS`` is written, an earlier run is left as it was (bounded) and
  ``_RUNNING`` is removed. Files of an unbounded output that Beam had
  finalised stay (each is complete), and the sinks' temporary files beside
  them are removed; without ``_SUCCESS`` no reader takes them for a run.

``_SUCCESS`` is JSON: the run id, pipeline, mode, runner, state, start and
end, the counts of the run summary and, per output, its glob, its files
(relative to DIR) and how many records it was written. Readers
(:func:`published_files`: the run summary's alert listing, ``hybridflow
report``) read exactly the files a ``_SUCCESS`` lists, and refuse a directory
without one.
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import json
import os
import posixpath
import socket
import time
import uuid
from typing import Any, Mapping, Optional

from hybridflow.durations import iso_time
from hybridflow.errors import InvalidLocationError

__all__ = [
    "RunOutputs",
    "SUCCESS",
    "RUNNING",
    "STAGING_PREFIX",
    "new_run_id",
    "read_success",
    "published_files",
    "location_error",
]

SUCCESS = "_SUCCESS"
RUNNING = "_RUNNING"
STAGING_PREFIX = ".hybridflow-tmp-"


def new_run_id() -> str:
    """``20261206T195000Z-1a2b3c4d``: UTC start time and a random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------
# Filesystem steps, local or through Beam's FileSystems


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _join(directory: str, *names: str) -> str:
    return posixpath.join(directory, *names) if not _is_local(directory) else os.path.join(directory, *names)


def _match(pattern: str) -> list[str]:
    """Paths of the files matching ``pattern`` (Beam glob: ``*`` within a name, ``**`` across)."""
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def _relative(path: str, directory: str) -> str:
    directory = _local(directory).rstrip("/") + "/"
    path = _local(path)
    if _is_local(directory):
        return os.path.relpath(path, directory)
    return path[len(directory):] if path.startswith(directory) else path


def _write(path: str, data: bytes) -> None:
    """Writes a small file whole (locally: to a temporary name, then renamed)."""
    if _is_local(path):
        path = _local(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path, mime_type="application/json") as f:
        f.write(data)


def _move(source: str, destination: str) -> None:
    if _is_local(source):
        destination = _local(destination)
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        os.replace(_local(source), destination)
        return
    from apache_beam.io.filesystems import FileSystems

    FileSystems.rename([source], [destination])


def _delete(paths: list[str]) -> None:
    if not paths:
        return
    if all(_is_local(p) for p in paths):
        for path in paths:
            try:
                os.remove(_local(path))
            except FileNotFoundError:
                pass
        return
    from apache_beam.io.filesystems import FileSystems

    FileSystems.delete(paths)


def _remove_tree(directory: str) -> None:
    """Removes ``directory`` and everything under it; missing is fine."""
    if _is_local(directory):
        import shutil

        shutil.rmtree(_local(directory), ignore_errors=True)
        return
    _delete(_match(_join(directory, "**")))


# Temporary files beside what a sink writes: Beam's FileBasedSink (``beam-temp-*/``),
# fileio (``.temp*/``), files being written under a hidden name (``.tmp-*``)
_TEMPORARY_PREFIXES = ("beam-temp-", ".temp", ".tmp-")


def _remove_temporary(directory: str) -> None:
    """Removes the sinks' temporary files anywhere under ``directory`` (an
    unbounded output's: a finished job has removed its own, a stopped one has not)."""
    temporary = [
        path for path in _match(_join(directory, "**"))
        if any(part.startswith(_TEMPORARY_PREFIXES) for part in _relative(path, directory).split("/"))
    ]
    _delete(temporary)
    if _is_local(directory):  # and the directories they were in
        import glob

        for prefix in ("beam-temp-", ".temp"):
            for path in glob.glob(os.path.join(glob.escape(_local(directory)), f"{prefix}*")):
                _remove_tree(path)


def _short(path: str, limit: int = 120) -> str:
    """A path for a one-line message: long ones cut in the middle, with their length."""
    if len(path) <= limit:
        return path
    return f"{path[:60]}...{path[-40:]} ({len(path)} characters)"


def location_error(directory: str, what: str, exc: BaseException) -> InvalidLocationError:
    """The one line for a directory that ``what`` cannot be written to, by the OS error's kind."""
    where = f"cannot write {what} to {_short(directory)!r}"
    code = getattr(exc, "errno", None)
    culprit = getattr(exc, "filename", None) or directory
    if code in (errno.ENOTDIR, errno.EEXIST) or (code is None and os.path.isfile(_local(directory))):
        blocking = _blocking_file(_local(directory)) or culprit
        return InvalidLocationError(f"{where}: {_short(blocking)!r} is a file, not a directory; give a directory path")
    if code in (errno.EACCES, errno.EPERM):
        return InvalidLocationError(f"{where}: permission denied; choose a directory you can write to, or fix its permissions")
    if code == errno.EROFS:
        return InvalidLocationError(f"{where}: the file system is read-only; choose another directory")
    if code == errno.ENAMETOOLONG:
        return InvalidLocationError(
            f"{where}: the path is too long (names of at most 255 bytes, paths of at most 4096); choose a shorter one"
        )
    if code == errno.ENOSPC:
        return InvalidLocationError(f"{where}: no space left on the device; free some space or choose another directory")
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200]
    return InvalidLocationError(f"{where}: {reason}; check the location, or choose another directory")


def _blocking_file(path: str) -> Optional[str]:
    """The first existing ancestor of ``path`` (itself included) that is a file, if any."""
    current = os.path.abspath(path)
    while current and current != os.path.dirname(current):
        if os.path.lexists(current):
            return current if not os.path.isdir(current) else None
        current = os.path.dirname(current)
    return None


# --------------------------------------------------------------------------
# The outputs of one run


@dataclasses.dataclass
class _Output:
    """One file sink of an output: its glob relative to its directory, its step label,
    and whether it is staged (bounded) or written in place by Beam (unbounded)."""

    name: str
    glob: str
    label: str
    bounded: bool


@dataclasses.dataclass
class _Directory:
    path: str
    staging: str
    outputs: list[_Output] = dataclasses.field(default_factory=list)
    unbounded: bool = False  # some output is published by Beam as it writes
    created: bool = False  # the directory did not exist before this run (local)

    @property
    def names(self) -> list[str]:
        return sorted({o.name for o in self.outputs})

    @property
    def marker(self) -> str:
        return _join(self.path if self.unbounded else self.staging, RUNNING)


def _directory_of(location: str) -> str:
    """The directory a file sink writes into: ``out`` for ``out/alerts.jsonl`` and for ``out/``."""
    if location.endswith("/"):
        return location.rstrip("/") or "/"
    head, sep, _ = location.rpartition("/")
    return (head or "/") if sep else "."


class RunOutputs:
    """Stages, checks, publishes or discards the file outputs of one run (see the module docstring).

    Args:
      run_id: the run's id (default: a new one).
      overwrite: replace an earlier run in an output directory.

    Use::

        outputs = RunOutputs(overwrite=False)
        uri = outputs.stage("alerts", "WriteAlerts", "out/alerts.jsonl", bounded=True)  # while building
        sink = WriteTo(uri)
        pcoll | "WriteAlerts" >> sink
        outputs.locate("WriteAlerts", sink.location)
        outputs.prepare()                     # before the job starts: checks, markers
        ... run the job ...
        outputs.publish(report, metrics)      # DONE: files into place, _SUCCESS
        # or outputs.abort()                  # failed, cancelled, interrupted
    """

    def __init__(self, run_id: Optional[str] = None, overwrite: bool = False):
        self.run_id = run_id or new_run_id()
        self.overwrite = overwrite
        #: output name -> the step labels of its sinks (file sinks or not)
        self.labels: dict[str, list[str]] = {}
        self._directories: dict[str, _Directory] = {}
        self._prepared = False

    def stage(self, name: str, label: str, uri: str, bounded: bool) -> str:
        """The URI the sink ``label`` of output ``name`` must write to: for a
        bounded file sink, the same path under the staging directory. Once the
        sink is applied, tell :meth:`locate` where it writes."""
        from hybridflow.io.uri import parse_uri

        self.labels.setdefault(name, []).append(label)
        endpoint = parse_uri(uri)
        if not endpoint.is_file:
            return uri
        location = endpoint.location
        directory = _directory_of(location)
        entry = self._directories.get(directory)
        if entry is None:
            staging = _join(directory, STAGING_PREFIX + self.run_id)
            entry = self._directories[directory] = _Directory(directory, staging)
        entry.outputs.append(_Output(name, "", label, bounded))
        if not bounded:
            entry.unbounded = True
            return uri
        start = endpoint.raw.index(location)
        staged = entry.staging + location[len(directory):]
        return endpoint.raw[:start] + staged + endpoint.raw[start + len(location):]

    def locate(self, label: str, location: str) -> str:
        """Records the files the applied sink ``label`` writes (``location``,
        its glob, staged or not: a sink knows its file names once applied);
        returns the location as it reads once published."""
        published = location.replace(f"/{STAGING_PREFIX}{self.run_id}", "")
        for entry in self._directories.values():
            for output in entry.outputs:
                if output.label == label:
                    output.glob = _relative(published, entry.path)
        return published

    # -- before the job

    def _earlier(self, entry: _Directory) -> list[str]:
        """Files of an earlier run in ``entry``: its _SUCCESS and the files that lists, and any
        file named like one of this run's outputs (or a _RUNNING marker: a run that never ended)."""
        found: list[str] = []
        for pattern in [SUCCESS, RUNNING] + [o.glob for o in entry.outputs]:
            found += _match(_join(entry.path, pattern))
        if any(path.endswith(SUCCESS) for path in found):
            try:
                success = read_success(entry.path)
            except InvalidLocationError:
                success = {}
            for name in success.get("outputs") or {}:
                found += [p for p in published_files(entry.path, name, success) if _match(p)]
        return sorted(set(found))

    def prepare(self) -> None:
        """Checks every output directory and marks the run as started in it;
        raises :class:`InvalidLocationError` (one line) before the job starts."""
        atexit.register(self._remove_at_exit)  # also after Beam's own exit handlers: workers may still write
        self._prepared = True
        try:
            for entry in self._directories.values():
                self._prepare(entry)
        except BaseException:
            self.abort()
            raise

    def _prepare(self, entry: _Directory) -> None:
        if _is_local(entry.path):
            entry.created = not os.path.lexists(_local(entry.path))
            try:
                os.makedirs(_local(entry.path), exist_ok=True)
                if any(o.bounded for o in entry.outputs):
                    os.makedirs(_local(entry.staging), exist_ok=True)
            except OSError as exc:
                raise location_error(entry.path, "the outputs " + ", ".join(entry.names), exc) from exc
        earlier = self._earlier(entry)
        if earlier and not self.overwrite:
            raise InvalidLocationError(
                f"output directory {_short(entry.path)!r} holds an earlier run ({len(earlier)} file(s), e.g. "
                f"{_relative(earlier[0], entry.path)}): pass --overwrite to replace it when this run succeeds, "
                "or choose another directory"
            )
        if earlier and entry.unbounded:
            _delete(earlier)  # the new files are published as they are written
        document = {
            "run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(), "start": iso_time(time.time())
        }
        try:
            _write(entry.marker, json.dumps(document).encode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - any filesystem's error: the directory cannot be written
            raise location_error(entry.path, "the outputs " + ", ".join(entry.names), exc) from exc

    # -- after the job

    def publish(self, document: Mapping[str, Any], written: Mapping[str, int]) -> list[str]:
        """Moves each directory's staged files into place and writes its
        ``_SUCCESS`` last; returns the ``_SUCCESS`` paths.

        ``document`` is the run's description (pipeline, mode, counts ...);
        ``written`` the records written per sink label."""
        markers = []
        for entry in self._directories.values():
            if self.overwrite and not entry.unbounded:
                earlier = self._earlier(entry)
                _delete([p for p in earlier if p.endswith(SUCCESS)])  # unpublished first
                _delete(earlier)
            outputs: dict[str, dict] = {}
            for output in entry.outputs:
                files = []
                if not output.bounded:  # Beam wrote them in place
                    files = [_relative(p, entry.path) for p in _match(_join(entry.path, output.glob))]
                for source in _match(_join(entry.staging, output.glob)) if output.bounded else []:
                    relative = _relative(source, entry.staging)
                    _move(source, _join(entry.path, relative))
                    files.append(relative)
                summary = outputs.setdefault(output.name, {"globs": [], "files": [], "records": 0})
                summary["globs"].append(output.glob)
                summary["files"] += files
                summary["records"] += written.get(output.label, 0)
            _remove_tree(entry.staging)
            if entry.unbounded:
                _remove_temporary(entry.path)
                _delete([entry.marker])
            success = {"run_id": self.run_id, **document, "outputs": outputs}
            path = _join(entry.path, SUCCESS)
            _write(path, (json.dumps(success, indent=2) + "\n").encode("utf-8"))
            markers.append(path)
        atexit.unregister(self._remove_at_exit)
        return markers

    def abort(self) -> None:
        """Discards the run: staging directories and markers go, nothing is published."""
        if not self._prepared:
            return
        self._remove_staging()
        for entry in self._directories.values():
            if entry.unbounded:
                try:
                    _remove_temporary(entry.path)
                    _delete([entry.marker])
                except Exception:  # noqa: BLE001 - a marker that cannot be removed says the run did not finish
                    pass
        self._remove_created()
        if not all(_is_local(d) for d in self._directories):
            atexit.unregister(self._remove_at_exit)  # local: kept, LOOPBACK workers of a stopped job may still write

    def _remove_staging(self) -> None:
        for entry in self._directories.values():
            try:
                _remove_tree(entry.staging)
            except Exception:  # noqa: BLE001 - best effort at exit; the directory is hidden and unpublished
                pass

    def _remove_at_exit(self) -> None:
        """After Beam's exit handlers have stopped the job: the staging
        directories again (workers of a stopped job may have written into
        them after :meth:`abort`) and the output directories this run made,
        when they hold nothing else. A worker thread may still be finishing a
        write, so a directory that is not empty yet is tried again briefly."""
        for _ in range(10):
            self._remove_staging()
            if self._remove_created():
                return
            time.sleep(0.2)

    def _remove_created(self) -> bool:
        """Removes the output directories this run made, each only when empty
        (made by this run, holding nothing); True when none of them is left."""
        left = False
        for entry in self._directories.values():
            if entry.created:
                try:
                    os.rmdir(_local(entry.path))
                except FileNotFoundError:
                    pass
                except OSError:
                    left = True
        return not left


# --------------------------------------------------------------------------
# Readers of published runs


def read_success(directory: str) -> dict:
    """The ``_SUCCESS`` document of ``directory``; raises
    :class:`InvalidLocationError` when it holds no published run."""
    from apache_beam.io.filesystems import FileSystems

    path = _join(directory.rstrip("/"), SUCCESS)
    try:
        with FileSystems.open(path) as f:
            return json.loads(f.read().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - missing or unreadable on any filesystem (OSError, BeamIOError, ValueError)
        raise InvalidLocationError(
            f"{_short(directory)!r} holds no published run (no readable {SUCCESS}): the run that writes there "
            "is still going, failed or was interrupted; rerun it, or give the directory of a finished run"
        ) from exc


def published_files(directory: str, name: str, success: Optional[Mapping[str, Any]] = None) -> list[str]:
    """Paths of the files of output ``name`` of the run published in
    ``directory`` (none when that run had no such output)."""
    success = success if success is not None else read_success(directory)
    entry = (success.get("outputs") or {}).get(name) or {}
    return [_join(directory.rstrip("/"), f) for f in entry.get("files", [])]
