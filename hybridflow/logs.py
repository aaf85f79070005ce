"""The log file of a command: where the full detail of a failure goes.

``hybridflow run`` (and ``generate``, ``report``, ``template``) write every
log record at INFO and above (Beam's, the job's, the workers'), Python
warnings, exceptions of background threads (gRPC streams of a stopped job)
and the traceback of a failure to one file per command::

    ~/.cache/hybridflow/logs/run-20261206T195000Z-12345.log

(``$HYBRIDFLOW_LOG_DIR`` overrides the directory; when it cannot be created,
a directory under the system's temporary directory is used; the newest
:data:`KEEP` files are kept). While a command runs, ``sys.stderr`` writes to
the file too, each line redacted (Beam's workers print tracebacks there); the terminal gets
hybridflow's own lines through :func:`terminal`: its warnings and, for a
failure, one line naming the problem, the fix and this file (see
:func:`hybridflow.errors.report`). ``--log_level LEVEL`` also shows every
logger's records from that level on in the terminal.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import tempfile
import threading
import time
from typing import IO, Optional

__all__ = ["CommandLog", "log_directory", "terminal", "KEEP", "LEVELS"]

KEEP = 50
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


_TERMINAL: Optional[IO[str]] = None


def terminal() -> IO[str]:
    """Where hybridflow's own lines for the user go: the terminal's stderr,
    also while a :class:`CommandLog` sends ``sys.stderr`` to its file."""
    return _TERMINAL or sys.stderr


def log_directory() -> pathlib.Path:
    """``$HYBRIDFLOW_LOG_DIR``, else ``~/.cache/hybridflow/logs``."""
    configured = os.environ.get("HYBRIDFLOW_LOG_DIR")
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path(os.path.expanduser("~")) / ".cache" / "hybridflow" / "logs"


class _OwnRecords(logging.Filter):
    """The terminal's default: hybridflow's own records only (Beam's go to the file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "hybridflow" or record.name.startswith("hybridflow.")


class _RedactingStream:
    """What ``sys.stderr`` is while a :class:`CommandLog` runs: text printed to
    stderr (a worker's traceback, a library's print) goes to the log file a
    line at a time, each line redacted like log records are
    (:func:`hybridflow.redaction.redact`), so a URI's password or token
    printed by any code never reaches the file."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        from hybridflow.redaction import redact

        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()  # after the last newline: kept until its line ends
            if lines:
                self._stream.write("".join(redact(line) + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        from hybridflow.redaction import redact

        with self._lock:
            if self._partial:
                self._stream.write(redact(self._partial))
                self._partial = ""
        self._stream.flush()

    def __getattr__(self, name):  # fileno, encoding, isatty ... of the file
        return getattr(self._stream, name)


class CommandLog:
    """Sends a command's logs to its log file (see the module docstring):
    :meth:`start`, then :meth:`stop` (or :meth:`keep_until_exit`).

    Args:
      command: the command's name, the start of the file name.
      level: ``--log_level`` when given: the terminal then shows every
        logger's records from that level on; None shows hybridflow's own
        warnings only.
    """

    def __init__(self, command: str, level: Optional[str] = None):
        self.command = command
        self.level = level
        self.path: Optional[str] = None
        self._file: Optional[logging.Handler] = None
        self._console: Optional[logging.Handler] = None
        self._saved: tuple = ()
        self._kept = False

    def _open_file(self) -> Optional[logging.FileHandler]:
        name = f"{self.command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
        fallback = pathlib.Path(tempfile.gettempdir()) / f"hybridflow-logs-{os.getuid()}"
        for directory in (log_directory(), fallback):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(directory / name, encoding="utf-8", delay=False)
            except OSError:
                continue
            self.path = str(directory / name)
            _prune(directory)
            return handler
        return None

    def start(self) -> "CommandLog":
        global _TERMINAL
        root = logging.getLogger()
        self._saved = (root.level, list(root.handlers), threading.excepthook, sys.unraisablehook, sys.stderr)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console.setLevel(self.level or logging.WARNING)
        if self.level is None:
            console.addFilter(_OwnRecords())
        root.addHandler(console)
        self._console = console
        self._file = self._open_file()
        if self._file is not None:
            self._file.setFormatter(logging.Formatter(_FORMAT))
            self._file.setLevel(logging.INFO)
            root.addHandler(self._file)
            _TERMINAL = sys.stderr
            sys.stderr = _RedactingStream(self._file.stream)  # prints to stderr (workers' tracebacks): the file
        levels = [logging.INFO] + ([logging.getLevelName(self.level)] if self.level else [])
        root.setLevel(min(levels))
        logging.captureWarnings(True)
        threading.excepthook = self._thread_exception
        sys.unraisablehook = self._unraisable
        return self

    def _thread_exception(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self._to_file(f"exception in thread {getattr(args.thread, 'name', '?')}",
                      (args.exc_type, args.exc_value, args.exc_traceback))

    def _unraisable(self, args) -> None:
        self._to_file(f"{args.err_msg or 'exception ignored'}: {args.object!r}",
                      (args.exc_type, args.exc_value, args.exc_traceback))

    def _to_file(self, message: str, exc_info) -> None:
        if self._file is None:
            return
        record = logging.LogRecord("hybridflow.threads", logging.ERROR, __file__, 0, message, None, exc_info)
        try:
            self._file.handle(record)
        except Exception:  # noqa: BLE001 - the process is stopping; nothing else to tell
            pass

    def exception(self, message: str, exc: BaseException) -> None:
        """Writes ``message`` and ``exc``'s traceback to the file only."""
        self._to_file(message, (type(exc), exc, exc.__traceback__))

    def quiet(self) -> None:
        """Stops the terminal output of logs: a failure is being reported in one line."""
        if self._console is not None:
            self._console.setLevel(logging.CRITICAL + 1)

    def keep_until_exit(self) -> None:
        """Keeps the file capturing logs, stderr and thread exceptions until
        the process exits (logging's own exit handler, which runs after Beam's,
        closes it): a stopped job's threads and job server end after the
        command has returned, some of them in Beam's exit handlers."""
        self.quiet()
        self._kept = True

    def _restore(self) -> None:
        global _TERMINAL
        level, handlers, excepthook, unraisablehook, stderr = self._saved
        if isinstance(sys.stderr, _RedactingStream):
            sys.stderr.flush()
        sys.stderr, _TERMINAL = stderr, None
        root = logging.getLogger()
        for handler in (self._console, self._file):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        threading.excepthook = excepthook
        sys.unraisablehook = unraisablehook
        logging.captureWarnings(False)

    def stop(self) -> None:
        """Ends the capture (unless :meth:`keep_until_exit` was called)."""
        if not self._kept:
            self._restore()


def _prune(directory: pathlib.Path) -> None:
    """Keeps the newest :data:`KEEP` log files of ``directory``."""
    try:
        logs = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in logs[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
