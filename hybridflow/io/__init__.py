"""Sources and sinks: one URI per endpoint.

``ReadFrom(uri)`` and ``WriteTo(uri)`` pick the connector by the URI's scheme:

==========================================  =========  ====  =====
URI                                         bounded?   read  write
==========================================  =========  ====  =====
local path / ``gs://`` / ``s3://`` glob     yes        yes   yes
``synthetic://transactions?...``           either     yes   --
``https://...``, ``webhook+http(s)://...``  either     --    yes (alerts: POST per record,
                                                             :mod:`hybridflow.monitoring.webhook`)
==========================================  =========  ====  =====

Each connector is a public ``ReadFromX`` / ``WriteToX`` PTransform in its own
module, thin over Beam's own IO; ``ReadFrom`` / ``WriteTo`` only dispatch.
"""

from __future__ import annotations

from typing import Any, Optional

import apache_beam as beam

from hybridflow.errors import InvalidUriError
from hybridflow.io.files import ReadFromFiles, WriteToFiles
from hybridflow.io.synthetic import ReadSyntheticTransactions, SyntheticTransactions, generate_transactions
from hybridflow.io.uri import EndpointUri, file_format, parse_uri

__all__ = [
    "ReadFrom",
    "WriteTo",
    "ReadFromFiles",
    "WriteToFiles",
    "ReadSyntheticTransactions",
    "SyntheticTransactions",
    "generate_transactions",
    "EndpointUri",
    "parse_uri",
    "supports_columnar",
]

_READ_SCHEMES = ("local path", "gs://", "s3://", "synthetic://")
_WRITE_SCHEMES = ("local path", "gs://", "s3://", "http(s)://", "webhook+http(s)://")


def _int_param(endpoint: EndpointUri, name: str, default: int) -> int:
    raw = endpoint.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidUriError(f"{endpoint.raw!r}: {name}={raw!r} must be an integer") from exc


def _file_prefix(endpoint: EndpointUri, fmt: str) -> tuple[str, str]:
    """Splits a sink location into (prefix, suffix)."""
    location = endpoint.location
    if location.endswith("/"):
        return location + "part", f".{fmt}"
    for ext in (f".{fmt}", ".json", ".ndjson", ".pq"):
        if location.endswith(ext):
            return location[: -len(ext)], ext
    return location, f".{fmt}"


def _reader(endpoint: EndpointUri, bounded: Optional[bool], columnar: bool = False) -> beam.PTransform:
    if columnar and not supports_columnar(endpoint.raw):
        raise InvalidUriError(
            f"{endpoint.raw!r}: columnar reads need JSON-lines or Parquet files "
            f"({', '.join(ReadFromFiles.COLUMNAR_FORMATS)})"
        )
    if endpoint.is_file:
        return ReadFromFiles(endpoint.location, format=file_format(endpoint), columnar=columnar)
    if endpoint.scheme == "synthetic":
        if endpoint.netloc != "transactions":
            raise InvalidUriError(
                f"{endpoint.raw!r}: unknown generator {endpoint.netloc!r}; "
                "use synthetic://transactions?..."
            )
        config = SyntheticTransactions.from_params(endpoint.params)
        if bounded is not None and config.bounded is None:
            import dataclasses

            config = dataclasses.replace(config, bounded=bounded)
        return ReadSyntheticTransactions(config)
    raise InvalidUriError(
        f"{endpoint.raw!r}: no source for scheme {endpoint.scheme!r}; "
        f"readable: {', '.join(_READ_SCHEMES)}"
    )


def _writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    if endpoint.is_file:
        fmt = file_format(endpoint)
        prefix, suffix = _file_prefix(endpoint, fmt)
        return WriteToFiles(
            prefix,
            format=fmt,
            suffix=suffix,
            num_shards=_int_param(endpoint, "shards", 0),
            triggering_frequency=_int_param(endpoint, "every", 60),
            record_type=record_type,
        )
    if endpoint.scheme in ("http", "https", "webhook+http", "webhook+https"):
        from hybridflow.monitoring.webhook import WriteToWebhook

        return WriteToWebhook.from_uri(endpoint.raw)
    raise InvalidUriError(
        f"{endpoint.raw!r}: no sink for scheme {endpoint.scheme!r}; "
        f"writable: {', '.join(_WRITE_SCHEMES)}"
    )


def supports_columnar(uri: str) -> bool:
    """Whether ``ReadFrom(uri, columnar=True)`` can read ``uri`` (JSON-lines or Parquet files)."""
    endpoint = parse_uri(uri)
    if not endpoint.is_file:
        return False
    try:
        return file_format(endpoint) in ReadFromFiles.COLUMNAR_FORMATS
    except InvalidUriError:
        return False


class ReadFrom(beam.PTransform):
    """Reads raw payloads from the endpoint named by ``uri``.

    Args:
      uri: the source (see the module table).
      bounded: for sources that can be either (``synthetic://``), force
        bounded (``True``) or unbounded (``False``); by default the URI decides.
      columnar: read JSON-lines or Parquet files as Arrow tables of many
        payloads (see :mod:`hybridflow.columnar`); the hybridflow transforms
        then run vectorized.

    Example::

        lines = p | ReadFrom("synthetic://transactions?count=1000&seed=7")
    """

    def __init__(self, uri: str, bounded: Optional[bool] = None, columnar: bool = False):
        super().__init__()
        self._endpoint = parse_uri(uri)
        self._source = _reader(self._endpoint, bounded, columnar)  # validates eagerly

    @property
    def uri(self) -> str:
        return self._endpoint.raw

    def expand(self, pbegin):
        return pbegin | self._source


class WriteTo(beam.PTransform):
    """Writes schema'd records to the endpoint named by ``uri``.

    Args:
      uri: the sink; file sinks accept ``?shards=N`` (number of files) and
        ``?every=SECONDS`` (window length of unbounded writes).
      record_type: the record type if the input's element type is not one.

    Example::

        alerts | WriteTo("out/alerts.jsonl?shards=1")
    """

    def __init__(self, uri: str, record_type: Any = None):
        super().__init__()
        self._endpoint = parse_uri(uri)
        self._sink = _writer(self._endpoint, record_type)

    @property
    def uri(self) -> str:
        return self._endpoint.raw

    @property
    def location(self) -> str:
        """Where the written data can be found (a glob for file sinks)."""
        return getattr(self._sink, "glob", self._endpoint.location)

    def expand(self, pcoll):
        return pcoll | self._sink
