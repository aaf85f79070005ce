"""The one exception tree of hybridflow.

Every error hybridflow raises on purpose derives from :class:`HybridflowError`::

    HybridflowError
     +-- UsageError            the user asked for something that cannot work:
     |    |                    the CLI prints one line and exits with code 2
     |    +-- UnknownPipelineError
     |    +-- UnknownProfileError
     |    +-- InvalidOptionError     a flag or parameter has a bad value
     |    +-- InvalidUriError        a source/sink URI cannot be understood
     |    +-- MissingExtraError      an optional dependency is not installed
     |    +-- InvalidLocationError   an input or output location cannot be used: no
     |                               file matches, not readable or writable, holds
     |                               an earlier run
     +-- SchemaError           a record type or transform configuration is invalid
     +-- ConnectorError        an external system failed (unreachable, missing table)
     |    +-- CorruptInputError      an input file cannot be read whole (truncated)
     +-- RecordError           one record is bad; carried into a dead letter, or
     |                         raised when a policy says ``FAIL``
     +-- JobFailedError        the job failed, was cancelled or stopped (exit code 1)
          +-- TooManyDeadLettersError  the job ended, but more records than
                                       ``--max_dead_letter_ratio`` allows became
                                       dead letters; nothing published (exit code 4)

Messages name the step, the bad value and the fix. Wrapping code always uses
``raise ... from exc`` so the original cause stays visible.
"""

from __future__ import annotations


class HybridflowError(Exception):
    """Base class of every error raised by hybridflow."""


class UsageError(HybridflowError):
    """The user asked for something that cannot work; CLI exit code 2."""

    exit_code = 2


class UnknownPipelineError(UsageError):
    """No pipeline is registered under the requested name."""


class UnknownProfileError(UsageError):
    """No runner profile of that name, and no such file."""


class InvalidOptionError(UsageError):
    """A flag or pipeline parameter has a value that cannot be used."""


class InvalidUriError(UsageError):
    """A source or sink URI cannot be understood."""


class MissingExtraError(UsageError):
    """An optional dependency is needed: ``pip install hybridflow[extra]``."""

    def __init__(self, feature: str, extra: str, module: str):
        super().__init__(
            f"{feature} needs the optional module {module!r}: "
            f"pip install 'hybridflow[{extra}]'"
        )
        self.feature = feature
        self.extra = extra
        self.module = module


class InvalidLocationError(UsageError):
    """An input or output location cannot be used (checked before the job starts)."""


class SchemaError(HybridflowError):
    """A record type, field name or transform configuration is invalid."""


class ConnectorError(HybridflowError):
    """An external system (broker, bucket, table, database) failed."""


class CorruptInputError(ConnectorError):
    """An input file cannot be read whole, e.g. a compressed file cut short."""


class RecordError(HybridflowError):
    """One record is invalid. ``reason`` is a short, countable category."""

    def __init__(self, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.field = field


class JobFailedError(HybridflowError):
    """The job failed, was cancelled or stopped; the message says where and why."""

    exit_code = 1


class TooManyDeadLettersError(JobFailedError):
    """The job ended, but too many records became dead letters (``--max_dead_letter_ratio``)."""

    exit_code = 4


def require(module: str, feature: str, extra: str):
    """Imports ``module`` or raises :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(feature, extra, module) from exc


def report(exc: HybridflowError, prog: str = "hybridflow", log: str | None = None) -> int:
    """Prints the one-line error of a command-line run to stderr and returns
    its exit code: 2 for a :class:`UsageError` (the message names the flag or
    field and the fix), the error's ``exit_code`` otherwise (1 by default;
    re-raised with its traceback when ``HYBRIDFLOW_TRACEBACK`` is set). URIs
    in the line are redacted (:func:`hybridflow.redaction.redact`).

    ``log`` is the command's log file: when the error has more detail than
    its line (a cause, the job's logs), the line ends with ``(details: LOG)``.
    """
    import os

    from hybridflow.logs import terminal
    from hybridflow.redaction import redact  # a message never shows a URI's password or token

    caused = exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__)
    more = log and (caused or isinstance(exc, JobFailedError))
    detail = f" (details: {log})" if more else ""
    if isinstance(exc, UsageError):
        print(f"{prog}: error: {redact(str(exc))}{detail}", file=terminal())
        return exc.exit_code
    if os.environ.get("HYBRIDFLOW_TRACEBACK"):
        raise exc
    kind = "" if isinstance(exc, JobFailedError) else f"{type(exc).__name__}: "
    print(f"{prog}: error: {kind}{redact(str(exc))}{detail}", file=terminal())
    return getattr(exc, "exit_code", 1)
