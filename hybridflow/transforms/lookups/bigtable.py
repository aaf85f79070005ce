"""BigtableLookup: reference rows from a Bigtable table, via Beam's handler.

A thin layer over Beam's ``BigTableEnrichmentHandler`` (which reads the row
with the latest cell of each column and decodes values as text): it adds the
TTL cache of :class:`~hybridflow.transforms.lookups.base.LookupHandler` and
turns the cells into a typed row of ``schema`` with the same coercion as
:class:`~hybridflow.transforms.ParseRecords`. The Python Bigtable client
honours ``BIGTABLE_EMULATOR_HOST``, so the emulator works unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

from hybridflow.errors import ConnectorError, RecordError, SchemaError, require
from hybridflow.transforms.lookups.base import LookupHandler
from hybridflow.transforms.parse import record_parser

__all__ = ["BigtableLookup", "cells_to_values"]


def cells_to_values(cells: Mapping[str, Mapping[str, Any]], column_family: Optional[str]) -> dict:
    """``{family: {column: text}}`` (as Beam's handler answers) -> ``{column: text}``.

    With ``column_family`` only that family is read; without it, a column name
    found in two families is an error (name the family to read)."""
    if column_family is not None:
        return dict(cells.get(column_family, {}))
    values: dict = {}
    for family, columns in cells.items():
        for column, value in columns.items():
            if column in values:
                raise RecordError(
                    "invalid_reference",
                    f"column {column!r} is in more than one column family; set column_family=...",
                    column,
                )
            values[column] = value
    return values


class BigtableLookup(LookupHandler):
    """Looks up reference rows in Bigtable by row key, with a TTL cache.

    The row key is the lookup key as text (UTF-8). Each column (qualifier)
    holds one field of ``schema`` as text: numbers in decimal, booleans as
    ``true``/``false``, lists as JSON, timestamps as ISO-8601 or epoch
    seconds. The key field may be omitted from the columns: it is taken from
    the row key. A missing row is a missing key (see ``MissingKeyPolicy``); a
    row whose cells do not fit ``schema`` becomes a dead letter
    (``invalid_reference``).

    The constructor stores configuration only; the Bigtable client is created
    on the worker (``__enter__``). Point it at an emulator with the
    ``BIGTABLE_EMULATOR_HOST=host:port`` environment variable.

    Args:
      project: the Google Cloud project id.
      instance: the Bigtable instance id.
      table: the table id.
      key: the reference field that holds the key (the row key).
      schema: the reference row type, a ``typing.NamedTuple`` class.
      column_family: read only this family; default: all (names must be unique).
      app_profile_id: a Bigtable app profile.
      encoding: of row keys and cell values (default ``utf-8``).
      cache_ttl: seconds (or ``"5m"``) an answer stays cached; 0: no cache.
      cache_size: most keys cached.
      clock: seconds as a float (default ``time.monotonic``), for tests.

    Example (needs a Bigtable or its emulator)::

        profiles = BigtableLookup(project="p", instance="i", table="card_profiles",
                                  key="card_id", schema=CardProfile, column_family="profile",
                                  cache_ttl="10m")
        enriched = txns | Enrich(key="card_id", handler=profiles, prefix="profile_")
    """

    _RUNTIME_ATTRS = LookupHandler._RUNTIME_ATTRS + ("_inner", "_parse")

    def __init__(
        self,
        project: str,
        instance: str,
        table: str,
        key: str,
        schema: Any,
        column_family: Optional[str] = None,
        app_profile_id: Optional[str] = None,
        encoding: str = "utf-8",
        cache_ttl: Union[float, str] = 0,
        cache_size: int = 100_000,
        clock: Optional[Callable[[], float]] = None,
    ):
        super().__init__(schema, key, cache_ttl=cache_ttl, cache_size=cache_size, clock=clock)
        for name, value in (("project", project), ("instance", instance), ("table", table)):
            if not value:
                raise SchemaError(f"BigtableLookup: {name} is required")
        self._project = project
        self._instance = instance
        self._table = table
        self._column_family = column_family
        self._app_profile_id = app_profile_id
        self._encoding = encoding
        self._inner = None
        self._parse = None

    def open(self) -> None:
        require("google.cloud.bigtable", "BigtableLookup", "gcp")
        from apache_beam.transforms.enrichment_handlers.bigtable import BigTableEnrichmentHandler
        from apache_beam.transforms.enrichment_handlers.utils import ExceptionLevel

        self._parse = record_parser(self._schema, {})
        self._inner = BigTableEnrichmentHandler(
            project_id=self._project,
            instance_id=self._instance,
            table_id=self._table,
            row_key="key",
            app_profile_id=self._app_profile_id,
            encoding=self._encoding,
            exception_level=ExceptionLevel.QUIET,
        )
        self._inner.__enter__()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.__exit__(None, None, None)
            self._inner = None

    def lookup(self, key: Any) -> Optional[Mapping[str, Any]]:
        import apache_beam as beam
        from google.api_core.exceptions import NotFound

        try:
            _, response = self._inner(beam.Row(key=key))
        except NotFound as exc:
            raise ConnectorError(
                f"BigtableLookup: table {self._project}/{self._instance}/{self._table} not found; "
                "create it or fix project/instance/table"
            ) from exc
        cells = response._asdict()
        if not cells:
            return None
        values = cells_to_values(cells, self._column_family)
        if not values:
            return None
        values.setdefault(self._key, key)
        try:
            return self._parse(values)._asdict()
        except RecordError as exc:
            raise RecordError(
                "invalid_reference", f"Bigtable row {key!r} of {self._table}: {exc}", exc.field
            ) from None

    def __repr__(self):
        return f"BigtableLookup({self._project}/{self._instance}/{self._table}, key={self._key!r})"
