"""Parsing of endpoint URIs: one URI names one source or sink.

``data/history/*.jsonl``, ``gs://bucket/path/*.parquet?format=parquet``,
``kafka://127.0.0.1:9092/transactions``, ``synthetic://transactions?count=100``.

A ``?`` in a local, ``gs://`` or ``s3://`` path is a glob wildcard unless what
follows it is a ``key=value&...`` query.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Iterable, Mapping, Optional

from hybridflow.errors import InvalidUriError
from hybridflow.redaction import redact

__all__ = ["EndpointUri", "parse_uri", "redact", "accepts", "FILE_SCHEMES", "FILE_FORMATS", "file_format"]

FILE_SCHEMES = frozenset({"file", "gs", "s3", "hdfs"})
# ecs: JSON lines in the Elastic Common Schema shape (a sink format, see hybridflow.io.ecs)
FILE_FORMATS = ("jsonl", "csv", "avro", "parquet", "orc", "ecs")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".avro": "avro",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".orc": "orc",
    ".ecs": "ecs",
}
_QUERY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^&]*(&[A-Za-z_][A-Za-z0-9_]*=[^&]*)*$")


@dataclasses.dataclass(frozen=True)
class EndpointUri:
    """A parsed endpoint URI.

    ``scheme`` is ``file`` for local paths; ``location`` is the URI without
    its query (for files: the path or glob handed to Beam's FileSystems);
    ``params`` the decoded query parameters. Messages show :attr:`redacted`,
    never ``raw``: a URI may carry a password or a token.
    """

    raw: str
    scheme: str
    location: str
    netloc: str
    path: str
    params: Mapping[str, str]

    @property
    def redacted(self) -> str:
        """The URI as it may be printed or stored (:func:`hybridflow.redaction.redact`)."""
        return redact(self.raw)

    @property
    def is_file(self) -> bool:
        return self.scheme in FILE_SCHEMES

    def param(self, name: str, default=None):
        return self.params.get(name, default)

    def int_param(self, name: str, default: Optional[int] = None) -> Optional[int]:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise InvalidUriError(f"{self.redacted!r}: {name}={raw!r} must be an integer") from None

    def bool_param(self, name: str, default: bool) -> bool:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise InvalidUriError(f"{self.redacted!r}: {name}={raw!r} must be true or false")

    def list_param(self, name: str) -> list[str]:
        raw = self.params.get(name) or ""
        return [item.strip() for item in raw.split(",") if item.strip()]

    def check_params(self, allowed: Iterable[str], what: str) -> None:
        """Raises InvalidUriError for a query parameter not in ``allowed``."""
        allowed = sorted(allowed)
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise InvalidUriError(
                f"{self.redacted!r}: unknown parameter {unknown[0]!r} for {what}; "
                f"known: {', '.join(allowed) or 'none'}"
            )


def parse_uri(uri: str) -> EndpointUri:
    """Parses ``uri``; raises :class:`InvalidUriError` naming the problem."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidUriError(f"empty endpoint URI {redact(uri) if isinstance(uri, str) else uri!r}: give a path or scheme://...")
    uri = uri.strip()
    location, params = uri, {}
    if "?" in uri:
        head, _, query = uri.rpartition("?")
        if _QUERY.match(query):
            location = head
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", location)
    if not match:
        return EndpointUri(uri, "file", location, "", location, params)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return EndpointUri(uri, "file", rest, "", rest, params)
    netloc, _, path = rest.partition("/")
    if not netloc:
        raise InvalidUriError(f"{redact(uri)!r}: nothing after {scheme}://; see docs/connectors.md for URI forms")
    return EndpointUri(uri, scheme, location, netloc, path, params)


def file_format(endpoint: EndpointUri) -> str:
    """The file format of ``endpoint``: ``format=`` or the extension."""
    fmt = endpoint.param("format")
    if fmt is None:
        path = endpoint.location.lower()
        for compressed in (".gz", ".bz2", ".zst", ".deflate"):
            if path.endswith(compressed):
                path = path[: -len(compressed)]
        for ext, name in _EXTENSIONS.items():
            if path.endswith(ext):
                fmt = name
                break
    if fmt is None:
        raise InvalidUriError(
            f"{endpoint.redacted!r}: cannot tell the file format; end the path with one of "
            f"{', '.join(sorted(_EXTENSIONS))} or add ?format=<{'|'.join(FILE_FORMATS)}>"
        )
    if fmt not in FILE_FORMATS:
        raise InvalidUriError(
            f"{endpoint.redacted!r}: unknown format {fmt!r}; use one of {', '.join(FILE_FORMATS)}"
        )
    return fmt


def accepts(server: str, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` accepts a TCP connection now: the up-front checks ask this first, since
    the clients behind them retry a refused connection for up to a minute before saying no."""
    import socket

    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
