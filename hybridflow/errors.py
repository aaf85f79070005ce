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
     +-- SchemaError           a record type or transform configuration is invalid
     +-- ConnectorError        an external system failed (unreachable, missing table)
     +-- RecordError           one record is bad; carried into a dead letter, or
                               raised when a policy says ``FAIL``

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


class SchemaError(HybridflowError):
    """A record type, field name or transform configuration is invalid."""


class ConnectorError(HybridflowError):
    """An external system (broker, bucket, table, database) failed."""


class RecordError(HybridflowError):
    """One record is invalid. ``reason`` is a short, countable category."""

    def __init__(self, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.field = field


def require(module: str, feature: str, extra: str):
    """Imports ``module`` or raises :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(feature, extra, module) from exc


def report(exc: HybridflowError, prog: str = "hybridflow") -> int:
    """Prints the one-line error of a command-line run to stderr and returns
    its exit code: 2 for a :class:`UsageError` (the message names the flag or
    field and the fix), 1 for any other hybridflow error (re-raised with its
    traceback when ``HYBRIDFLOW_TRACEBACK`` is set). URIs in the line are
    redacted (:func:`hybridflow.redaction.redact`)."""
    import os
    import sys

    from hybridflow.redaction import redact  # a message never shows a URI's password or token

    if isinstance(exc, UsageError):
        print(f"{prog}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if os.environ.get("HYBRIDFLOW_TRACEBACK"):
        raise exc
    print(f"{prog}: error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
    return 1
