"""PostgreSQL partitioned reads, the Sqoop role: ``postgresql://user@host:port/db?table=T&partition_column=C&partitions=N``.

The password is given by reference, ``password_env=NAME`` (an environment
variable) or ``password_secret=projects/P/secrets/S`` (Secret Manager), and
read where each connection is opened (:mod:`hybridflow.io.secrets`), so it
is in no option, template parameter or job graph. A password written in the
URI still works for a local run but is shown as ``***`` everywhere, and
launchers and flex templates refuse it.

The table is split by a numeric or timestamp column into ``partitions``
contiguous ranges between its minimum and maximum (plus one range for rows
where the column is NULL, so none are lost), and the ranges are read in
parallel: one query per range, on whichever worker gets it after a
``Reshuffle``. Without ``partition_column`` the table is read by one query.
Identifiers are validated (``[A-Za-z_][A-Za-z0-9_$]*``, optionally
``schema.table``) and quoted with ``psycopg.sql.Identifier`` (so they are
case-sensitive); range bounds are bound parameters, never text in the SQL.
Ranges are planned once from ``min``/``max`` at the start: rows written during
the read may or may not be included (no snapshot spans the parallel queries).

Rows come out as dicts (``numeric`` as ``int``/``float``, ``date``/``time``/
``uuid`` as text, ``timestamp[tz]`` as ``datetime``, arrays as lists), typed by
:class:`~hybridflow.transforms.ParseRecords`.

Why not Beam's JDBC IO: ``apache_beam.io.jdbc.ReadFromJdbc`` (which has
``partition_column``/``partitions``) is a cross-language transform whose URN
``beam:transform:org.apache.beam:schemaio_jdbc_read:v1`` is registered by
``beam-sdks-java-extensions-schemaio-expansion-service``. The Maven registry
reachable here serves that module at no version (2.55-2.73 tried), nor Beam's
shaded IO expansion-service jar, and ``beam-sdks-java-io-jdbc`` only up to
2.70.0; an expansion service assembled from the modules that do resolve
answers ``Unknown urn: ...schemaio_jdbc_read:v1``. So this module reads with
psycopg 3 (``pip install hybridflow[postgres]``) inside ordinary DoFns, which
also runs on every runner without a Java worker.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from typing import Any, Optional, Sequence

import apache_beam as beam

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io.secrets import SecretRef
from hybridflow.io.uri import EndpointUri
from hybridflow.metrics import CountElements
from hybridflow.redaction import redact

__all__ = ["ReadFromPostgres", "plan_ranges"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# type OIDs: int2, int4, int8, float4, float8, numeric; date, timestamp, timestamptz
_NUMERIC_TYPES = {21, 23, 20, 700, 701, 1700}
_TEMPORAL_TYPES = {1082, 1114, 1184}


def _identifier_parts(uri: str, name: str, what: str) -> tuple[str, ...]:
    parts = tuple(name.split("."))
    if not name or len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise InvalidUriError(
            f"{uri}: {what}={name!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_$]*, or schema.table)"
        )
    return parts


def plan_ranges(low: Any, high: Any, partitions: int) -> list[tuple[Any, Any, bool]]:
    """Splits ``[low, high]`` into up to ``partitions`` ranges ``(start, end, last)``:
    ``start <= value < end``, or ``<= end`` for the last. Works for ints,
    floats, Decimals, dates and datetimes.

    >>> plan_ranges(1, 10, 3)
    [(1, 4, False), (4, 7, False), (7, 10, True)]
    >>> plan_ranges(5, 5, 4)
    [(5, 5, True)]
    """
    if low is None or high is None:
        return []
    if low == high or partitions <= 1:
        return [(low, high, True)]
    span = high - low
    if isinstance(low, int):
        partitions = min(partitions, span)
        bounds = [low + span * i // partitions for i in range(partitions)] + [high]
    else:
        step = span / partitions
        bounds = [low + step * i for i in range(partitions)] + [high]
    ranges = []
    for i in range(len(bounds) - 1):
        if bounds[i] < bounds[i + 1] or i == len(bounds) - 2:
            ranges.append((bounds[i], bounds[i + 1], i == len(bounds) - 2))
    return ranges


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID)) and not isinstance(value, datetime.datetime):
        return value.isoformat() if not isinstance(value, uuid.UUID) else str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _connect(url: str, password: SecretRef, timeout: int, where: str = "here"):
    """A psycopg connection to ``url``, the password read from its reference."""
    import psycopg

    secret = password.resolve(where)
    return psycopg.connect(url, autocommit=True, connect_timeout=timeout,
                           **({"password": secret} if secret is not None else {}))


class _PostgresFn(beam.DoFn):
    """Holds one connection per DoFn instance (made in ``setup``, closed in ``teardown``)."""

    def __init__(self, url: str, table: Sequence[str], columns: Sequence[str], partition_column: Optional[str],
                 password: SecretRef):
        self._url = url
        self._table = tuple(table)
        self._columns = list(columns)
        self._partition_column = partition_column
        self._password = password

    def setup(self):
        self._conn = _connect(self._url, self._password, 10, where="on this worker")

    def teardown(self):
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def _select(self):
        from psycopg import sql

        columns = sql.SQL(", ").join(map(sql.Identifier, self._columns)) if self._columns else sql.SQL("*")
        return sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(*self._table))


class _PlanRanges(_PostgresFn):
    def __init__(self, url, table, columns, partition_column, password, partitions):
        super().__init__(url, table, columns, partition_column, password)
        self._partitions = partitions

    def process(self, _):
        from psycopg import sql

        if self._partition_column is None:
            yield ("all", None, None, True)
            return
        column = sql.Identifier(self._partition_column)
        low, high = self._conn.execute(
            sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(c=column, t=sql.Identifier(*self._table))
        ).fetchone()
        for start, end, last in plan_ranges(low, high, self._partitions):
            yield ("range", start, end, last)
        yield ("null", None, None, True)


class _ReadRange(_PostgresFn):
    def process(self, planned):
        from psycopg import sql

        kind, start, end, last = planned
        query, params = self._select(), ()
        if kind == "range":
            column = sql.Identifier(self._partition_column)
            query = sql.SQL("{} WHERE {} >= %s AND {} {} %s").format(
                query, column, column, sql.SQL("<=" if last else "<")
            )
            params = (start, end)
        elif kind == "null":
            query = sql.SQL("{} WHERE {} IS NULL").format(query, sql.Identifier(self._partition_column))
        with self._conn.cursor() as cursor:
            cursor.execute(query, params)
            names = [d.name for d in cursor.description]
            for row in cursor:
                yield {name: _plain(value) for name, value in zip(names, row, strict=True)}


class ReadFromPostgres(beam.PTransform):
    """Reads a PostgreSQL table as dicts, split into ranges read in parallel.

    Args:
      url: ``postgresql://user@host:port/database`` (libpq URL; a
        ``:password`` in it works but is better given by reference).
      table: ``table`` or ``schema.table``.
      partition_column: a numeric, date or timestamp column to split on;
        ``None`` reads with one query.
      partitions: number of ranges (plus one for NULLs).
      columns: columns to read (default all).
      validate: at construction, connect and check the table and column.
      password_env: the environment variable that holds the password, read
        where each connection is opened.
      password_secret: the Secret Manager version that holds it
        (``projects/P/secrets/S[/versions/V]``), read the same way.

    Example::

        rows = p | ReadFromPostgres("postgresql://etl@db:5432/shop", "public.orders",
                                    partition_column="order_id", partitions=8,
                                    password_env="PGPASSWORD")
    """

    def __init__(
        self,
        url: str,
        table: str,
        partition_column: Optional[str] = None,
        partitions: int = 4,
        columns: Optional[Sequence[str]] = None,
        validate: bool = True,
        password_env: Optional[str] = None,
        password_secret: Optional[str] = None,
    ):
        super().__init__()
        self._uri = f"{redact(url)}?table={table}"
        self._url = url
        try:
            self._password = SecretRef(password_env, password_secret)
        except InvalidUriError as exc:
            raise InvalidUriError(f"{self._uri}: {exc}") from None
        if self._password and redact(url) != url:
            raise InvalidUriError(f"{self._uri}: a password in the URL and {self._password.describe()}: give one")
        self._table = _identifier_parts(self._uri, table, "table")
        self._columns = [_identifier_parts(self._uri, c, "columns")[-1] for c in (columns or [])]
        if partition_column is not None:
            _identifier_parts(self._uri, partition_column, "partition_column")
        if partitions < 1:
            raise InvalidUriError(f"{self._uri}: partitions={partitions} must be >= 1")
        self._partition_column = partition_column
        self._partitions = partitions
        self._validate = validate

    def _check(self) -> None:
        psycopg = require("psycopg", f"{self._uri} (PostgreSQL)", "postgres")
        from psycopg import sql

        try:
            conn = _connect(self._url, self._password, 5)
        except ConnectorError as exc:  # the password's reference cannot be read here
            raise ConnectorError(f"{self._uri}: {exc}") from None
        except psycopg.OperationalError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(exc).__name__
            raise ConnectorError(f"{self._uri}: cannot connect ({reason}); check host, port, user and database") from exc
        with conn:
            if conn.execute("SELECT to_regclass(%s)", (sql.Identifier(*self._table).as_string(conn),)).fetchone()[0] is None:
                raise ConnectorError(f"{self._uri}: table {'.'.join(self._table)} does not exist; create it or fix table=")
            wanted = [*self._columns, *([self._partition_column] if self._partition_column else [])]
            try:
                cursor = conn.execute(
                    sql.SQL("SELECT {} FROM {} LIMIT 0").format(
                        sql.SQL(", ").join(map(sql.Identifier, wanted)) if wanted else sql.SQL("*"),
                        sql.Identifier(*self._table),
                    )
                )
            except psycopg.errors.UndefinedColumn as exc:
                raise ConnectorError(f"{self._uri}: {exc.diag.message_primary}; fix columns= or partition_column=") from None
            if self._partition_column:
                type_oid = cursor.description[-1].type_code
                if type_oid not in _NUMERIC_TYPES | _TEMPORAL_TYPES:
                    raise ConnectorError(
                        f"{self._uri}: partition_column={self._partition_column!r} must be numeric, date or "
                        "timestamp to be split into ranges"
                    )

    def expand(self, pbegin):
        require("psycopg", f"{self._uri} (PostgreSQL)", "postgres")
        if self._validate:
            self._check()
        return (
            pbegin
            | "Start" >> beam.Create([None])
            | "PlanRanges" >> beam.ParDo(
                _PlanRanges(self._url, self._table, self._columns, self._partition_column, self._password,
                            self._partitions)
            )
            | "Spread" >> beam.Reshuffle()
            | "ReadRange" >> beam.ParDo(
                _ReadRange(self._url, self._table, self._columns, self._partition_column, self._password)
            )
            | "CountRead" >> CountElements("records_read")
        )


# --------------------------------------------------------------------------
# URIs


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    endpoint.check_params(
        ("table", "partition_column", "partitions", "columns", "validate", "password_env", "password_secret"),
        "postgresql:// sources",
    )
    if not endpoint.param("table"):
        raise InvalidUriError(f"{endpoint.redacted!r}: add ?table=NAME (and partition_column=..., partitions=N)")
    url = endpoint.location if endpoint.scheme == "postgresql" else "postgresql" + endpoint.location[len("postgres"):]
    return ReadFromPostgres(
        url,
        endpoint.param("table"),
        partition_column=endpoint.param("partition_column"),
        partitions=endpoint.int_param("partitions", 4),
        columns=endpoint.list_param("columns"),
        validate=endpoint.bool_param("validate", True),
        password_env=endpoint.param("password_env") or None,
        password_secret=endpoint.param("password_secret") or None,
    )
