"""Filters for the four kinds of notice that importing and using Apache Beam prints and
that do not concern a hybridflow user; every other warning still shows.

Each filter matches one exact message, never a category or a whole logger:

- the ``FutureWarning`` that the installed grpcio predates post-quantum TLS,
  which google-api-core repeats for each Google client package Beam imports
  (``Package google.pubsub_v1 depends on grpcio, ...``) and google-auth says
  once more: grpcio is pinned by Beam's dependencies, nothing the user runs;
- ``Failed to import GCSFileSystem`` (``apache_beam.io.filesystems``) when
  the ``gcp`` extra is absent or partial: a ``gs://`` location then fails
  with hybridflow's own error naming the extra;
- ``crcmod package not found`` (``apache_beam.io.tfrecordio``, logged to the
  root logger at import): only TFRecord files need it, and hybridflow reads none;
- Beam's notice that its own ``_ReadMatchesFn`` (``fileio.ReadMatches``, behind
  CSV reads) mixes ``yield`` and ``return``: the same notice for a user's DoFn
  still shows.

:func:`install` runs when :mod:`hybridflow` is imported, so before Beam
whenever hybridflow is imported first (the CLI always does).
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["install", "QUIET_WARNINGS", "QUIET_LOG_MESSAGES"]

#: (category, regex matched at the start of the message) of the Python warnings filtered.
QUIET_WARNINGS = (
    (FutureWarning, r"Package [\w.]+ depends on grpcio, currently installed at version [\d.]+\. grpcio < [\d.]+ "
                    r"does not support Post-Quantum Cryptography"),
    (FutureWarning, r"grpcio < [\d.]+ does not support Post-Quantum Cryptography"),
)

#: logger name -> start of the one log message filtered there.
QUIET_LOG_MESSAGES = {
    "apache_beam.io.filesystems": "Failed to import GCSFileSystem; loading of this filesystem will be skipped.",
    "root": "crcmod package not found. This package is required if python-snappy or google-crc32c are not installed.",
    "apache_beam.transforms.core": (
        "Using yield and return in the process method of <class 'apache_beam.io.fileio._ReadMatchesFn'>"
    ),
}


class _DropMessage(logging.Filter):
    """Drops the records of one logger whose message starts with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def install() -> None:
    """Adds the filters (once per process; calling again changes nothing)."""
    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, prefix in QUIET_LOG_MESSAGES.items():
        logger = logging.getLogger(None if name == "root" else name)
        if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessage(prefix))
