"""Enrich: join each record with reference data keyed by one of its fields."""

from __future__ import annotations

import enum
from typing import Any, Mapping, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.io.requestresponse import Caller
from apache_beam.transforms.enrichment import Enrichment
from apache_beam.typehints.row_type import RowTypeConstraint
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import RecordError, SchemaError
from hybridflow.metrics import EventTimeLag, counter
from hybridflow.schemas import DeadLetter, fields_of
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter
from hybridflow.transforms.lookups import LookupHandler
from hybridflow.transforms.windows import FixedWindow, WindowSpec, window_spec

__all__ = ["Enrich", "MissingKeyPolicy"]


class MissingKeyPolicy(str, enum.Enum):
    """What :class:`Enrich` does with a record whose key has no reference row."""

    DEAD_LETTER = "dead_letter"  #: route it to dead letters (reason ``missing_key``)
    NULLS = "nulls"  #: pass it through with the reference fields set to None
    FAIL = "fail"  #: fail the pipeline (for reference data that must be complete)


class _JoinFn(beam.DoFn):
    """Adds the reference fields to a record, or applies the missing-key policy."""

    def __init__(self, key, input_names, table_names, prefix, policy, stage):
        self._key = key
        self._input_names = input_names
        self._table_names = table_names
        self._prefix = prefix
        self._policy = policy
        self._stage = stage

    def setup(self):
        self._dead = DeadLetterCounter()
        self._in = counter("records_in")
        self._lag = EventTimeLag()
        self._hits = counter("enrich_hits")
        self._misses = counter("enrich_misses")
        self._out = counter("records_out")
        self._none = {self._prefix + n: None for n in self._table_names}

    def _received(self, timestamp) -> None:
        self._in.inc()
        self._lag.observe(timestamp)

    def _join(self, record, ref: Optional[Mapping[str, Any]], window_start: Optional[int] = None):
        values = {n: getattr(record, n) for n in self._input_names}
        if ref is None:
            self._misses.inc()
            missing = missing_key_text(self._key, record, window_start)
            if self._policy is MissingKeyPolicy.DEAD_LETTER:
                yield self._dead.dead_letter(self._stage, "missing_key", f"no reference row for {missing}", record)
                return
            if self._policy is MissingKeyPolicy.FAIL:
                raise RecordError(
                    "missing_key",
                    f"{self._stage}: no reference row for {missing} "
                    "(on_missing=fail); complete the reference table or use on_missing=nulls",
                )
            values.update(self._none)
        else:
            self._hits.inc()
            for n in self._table_names:
                values[self._prefix + n] = ref[n]
        self._out.inc()
        yield beam.Row(**values)


def missing_key_text(key: Union[str, tuple, None], record, window_start: Optional[int]) -> str:
    """``card_id='c1'`` (``product_id='p1', hour=14`` for a composite key), with
    ``in the window starting at ...`` for a window join."""
    names = (key,) if isinstance(key, str) else tuple(key or ())
    text = ", ".join(f"{k}={getattr(record, k)!r}" for k in names) if names else "the window"
    if window_start is None:
        return text
    return f"{text} in the window starting at {Timestamp(micros=window_start).to_rfc3339()}"


def _key_of(record, key: Union[str, tuple, None]):
    """The join key of ``record``: a field's value, or a tuple of values for a composite key."""
    if not key:
        return None
    if isinstance(key, str):
        return getattr(record, key)
    return tuple(getattr(record, k) for k in key)


class _SideInputJoinFn(_JoinFn):
    """Joins on the key, or on (key, window start) when ``window`` is a fixed window."""

    def __init__(self, *args, window: Optional[FixedWindow] = None):
        super().__init__(*args)
        self._window = window

    def process(self, record, table, timestamp=beam.DoFn.TimestampParam):
        self._received(timestamp)
        key = _key_of(record, self._key)
        start = None
        if self._window is not None:
            ((start, _),) = self._window.assign(timestamp.micros)
            key = (key, start)
        ref = table.get(key)
        yield from self._join(record, ref._asdict() if ref is not None else None, start)


class _LookupJoinFn(_JoinFn):
    """(record, answer of _KeyedCaller) -> joined row or dead letter."""

    def setup(self):
        super().setup()
        self._cache_counters = {True: counter("enrich_cache_hits"), False: counter("enrich_cache_misses")}

    def process(self, element, timestamp=beam.DoFn.TimestampParam):
        self._received(timestamp)
        record, (status, value, cache_hit) = element
        if cache_hit is not None:
            self._cache_counters[cache_hit].inc()
        if status == "invalid":
            reason, message = value
            yield self._dead.dead_letter(self._stage, reason, message, record)
        else:
            yield from self._join(record, value)


class _KeyedCaller(Caller):
    """Adapts a LookupHandler to Beam's Enrichment: reads the key from the
    record's ``key_field`` and answers ``("found"|"missing", row, cache_hit)``
    or ``("invalid", (reason, message), cache_hit)`` instead of failing the
    bundle; ``cache_hit`` is None when the handler has no cache."""

    def __init__(self, handler: LookupHandler, key_field: str):
        self._handler = handler
        self._key_field = key_field

    def __enter__(self):
        self._handler.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        return self._handler.__exit__(exc_type, exc_val, exc_tb)

    def __call__(self, request, *args, **kwargs):
        try:
            row, cache_hit = self._handler.lookup_with_cache_status(getattr(request, self._key_field))
        except RecordError as exc:
            return request, ("invalid", (exc.reason, str(exc)), False if self._handler.caching else None)
        return request, ("found" if row is not None else "missing", row, cache_hit)

    def get_cache_key(self, request) -> str:
        return f"{self._key_field}: {getattr(request, self._key_field)}"

    def __str__(self):
        return f"Lookup({self._handler!r})"


def _pair(request, answer):
    return request, answer


def _composite_keys(key, table_key, has_table: bool, has_window: bool) -> tuple[tuple, tuple]:
    """Checks a composite ``key``/``table_key`` pair; returns them as tuples."""
    keys = (key,) if isinstance(key, str) else tuple(key or ())
    table_keys = keys if table_key is None else ((table_key,) if isinstance(table_key, str) else tuple(table_key))
    if not has_table:
        raise SchemaError(f"Enrich: key={list(keys)!r}: a composite key joins a table=...; a lookup handler "
                          "joins on its one key field")
    if has_window:
        raise SchemaError(f"Enrich: key={list(keys)!r} with window=...: a window join takes one key field")
    if not keys or not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
        raise SchemaError(f"Enrich: key={key!r} must be a field name or a list of distinct field names")
    if len(table_keys) != len(keys) or not all(isinstance(k, str) and k for k in table_keys):
        raise SchemaError(
            f"Enrich: table_key={table_key!r} must name as many table fields as key={list(keys)!r}"
        )
    return keys, table_keys


class Enrich(beam.PTransform):
    """Joins each record with the reference row of its key.

    Two sources of reference data:

    - ``table``: a bounded PCollection of schema'd rows (for example card
      profiles computed by the batch layer), broadcast to every worker as a
      side input; it must fit in memory.
    - ``handler``: a :class:`~hybridflow.transforms.lookups.LookupHandler`
      (:class:`~hybridflow.transforms.lookups.InMemoryLookup`,
      :class:`~hybridflow.transforms.lookups.BigtableLookup`) that looks up
      each key through Beam's ``Enrichment`` transform, with the handler's
      TTL cache. A reference row that exists but cannot be read becomes a dead
      letter (``invalid_reference``).

    The output rows (``beam.Row`` with a schema) have every input field plus
    every reference field except its key, prefixed with ``prefix``; the
    reference fields are ``Optional`` because of :attr:`MissingKeyPolicy.NULLS`.
    Both sources work on bounded and unbounded input alike.

    Args:
      table: the reference PCollection (NamedTuple or ``beam.Row`` elements).
      key: the input field to join on; a list of fields for a composite
        key (``["product_id", "hour"]``; ``table`` only, records not Arrow
        tables), matched with as many reference fields.
      table_key: the reference field (or fields, as many as ``key``) to join
        on (``table`` only); defaults to ``key``. A handler knows its own key field.
      fields: reference fields to add; defaults to all but the key.
      prefix: prefix of the added fields.
      on_missing: a :class:`MissingKeyPolicy` (or its value: ``nulls``,
        ``dead_letter``, ``fail``).
      handler: a lookup handler, instead of ``table``.
      timeout: seconds one lookup may take (``handler`` only).
      window: a fixed window spec (``"fixed:10s"``; ``table`` only): join
        each record with the reference row of its key *and* of the window its
        event time falls in, the table's rows naming their window in
        ``window_start`` (the output of ``WindowedAggregate``); ``key`` may
        then be omitted (one reference row per window). The table's
        ``window_start``/``window_end`` are not added to the output.

    Returns a tuple-like result ``(records, dead_letters)`` with attributes
    ``.records`` and ``.dead_letters``.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import CardProfile, Enrich, InMemoryLookup
        >>> from hybridflow.testing import START, CreateEvents, batch_pipeline, transactions
        >>> profiles = [CardProfile("c1", 12, 40.0, 8.0, ["US"], START)]
        >>> with batch_pipeline() as p:
        ...     txns = p | CreateEvents(transactions([("c1", 10.0, 5), ("c2", 3.0, 6)]))
        ...     table = p | "Profiles" >> beam.Create(profiles)
        ...     by_table = txns | "ByTable" >> Enrich(table, key="card_id", prefix="profile_")
        ...     by_lookup = txns | "ByLookup" >> Enrich(
        ...         key="card_id", handler=InMemoryLookup(profiles, key="card_id", cache_ttl="5m"),
        ...         prefix="profile_", on_missing="dead_letter")
        ...     lines = (
        ...         by_table.records | "T" >> beam.Map(lambda r: f"table  {r.card_id} {r.profile_amount_mean}"),
        ...         by_lookup.records | "L" >> beam.Map(lambda r: f"lookup {r.card_id} {r.profile_amount_mean}"),
        ...         by_lookup.dead_letters | "D" >> beam.Map(lambda d: f"dead letter {d.error_type}"))
        ...     _ = lines | beam.Flatten() | beam.combiners.ToList() | beam.FlatMap(sorted) | beam.Map(print)
        dead letter missing_key
        lookup c1 40.0
        table  c1 40.0
        table  c2 None
    """

    def __init__(
        self,
        table: Optional[beam.PCollection] = None,
        key: Union[str, Sequence[str]] = "",
        table_key: Union[str, Sequence[str], None] = None,
        fields: Optional[Sequence[str]] = None,
        prefix: str = "",
        on_missing: Union[MissingKeyPolicy, str] = MissingKeyPolicy.NULLS,
        handler: Optional[LookupHandler] = None,
        timeout: float = 30.0,
        window: Union[WindowSpec, Mapping[str, Any], str, None] = None,
    ):
        super().__init__()
        if (table is None) == (handler is None):
            raise SchemaError("Enrich: give exactly one of table=... (a PCollection) or handler=... (a LookupHandler)")
        self._window = window_spec(window) if window is not None else None
        if self._window is not None:
            if not isinstance(self._window, FixedWindow):
                raise SchemaError(
                    f"Enrich: window={window!r}; a record is joined with one window: use fixed:SIZE "
                    "(a record falls in several sliding windows, and sessions are not known in advance)"
                )
            if handler is not None:
                raise SchemaError("Enrich: window=... joins on a table=...; a lookup handler joins on its key only")
        elif not key:
            raise SchemaError("Enrich: key=... (the input field to join on) is required")
        if table_key and not key:
            raise SchemaError(f"Enrich: table_key={table_key!r} needs key=... (the input field it matches)")
        if handler is not None:
            if not isinstance(handler, LookupHandler):
                raise SchemaError(f"Enrich: handler must be a LookupHandler, got {type(handler).__name__}")
            if table_key is not None:
                raise SchemaError("Enrich: table_key applies to table=...; a handler names its own key field")
        if not isinstance(key, str) or (table_key is not None and not isinstance(table_key, str)):
            key, table_key = _composite_keys(key, table_key, table is not None, self._window is not None)
        self._composite = not isinstance(key, str)
        self._table = table
        self._handler = handler
        self._timeout = timeout
        self._key = key or None
        self._table_key = table_key or key or None
        self._fields = list(fields) if fields is not None else None
        self._prefix = prefix
        try:
            self._policy = MissingKeyPolicy(on_missing)
        except ValueError:
            raise SchemaError(
                f"Enrich.on_missing={on_missing!r}; use one of "
                f"{', '.join(p.value for p in MissingKeyPolicy)}"
            ) from None

    def expand(self, pcoll):
        from hybridflow.columnar import ArrowTableType, ToRecords, is_columnar

        columnar = is_columnar(pcoll)
        input_type = pcoll.element_type.record_type if columnar else pcoll.element_type
        input_fields = fields_of(input_type)
        reference = self._table
        table_type = None
        if reference is not None:
            table_type = reference.element_type
            if isinstance(table_type, ArrowTableType):
                table_type = table_type.record_type
                if not columnar:
                    reference = reference | "TableToRecords" >> ToRecords()
        if self._handler is not None:
            if columnar:
                raise SchemaError(
                    "Enrich with a lookup handler joins record by record; convert Arrow tables with "
                    "hybridflow.columnar.ToRecords() first, or enrich from a side-input table"
                )
            table_fields, table_key = self._handler.fields(), self._handler.key
        else:
            table_fields, table_key = fields_of(table_type), self._table_key
        input_names = [f.name for f in input_fields]
        table_by_name = {f.name: f for f in table_fields}
        keys = (self._key,) if isinstance(self._key, str) else tuple(self._key or ())
        table_keys = (table_key,) if isinstance(table_key, str) else tuple(table_key or ())
        for k in keys:
            if k not in input_names:
                raise SchemaError(f"Enrich: key {k!r} is not an input field ({', '.join(input_names)})")
        for k in table_keys:
            if k not in table_by_name:
                raise SchemaError(
                    f"Enrich: table_key {k!r} is not a field of the table ({', '.join(table_by_name)})"
                )
        if self._composite and columnar:
            raise SchemaError(
                f"Enrich: the composite key {list(keys)} joins records; convert Arrow tables with "
                "hybridflow.columnar.ToRecords() first, or join on one field"
            )
        joined_on = set(table_keys)
        if self._window is not None:
            start = table_by_name.get("window_start")
            if start is None or start.type is not Timestamp or start.is_list:
                raise SchemaError(
                    "Enrich: window=... joins on the table's window_start (a Timestamp field), which the "
                    f"table does not have ({', '.join(table_by_name)}); join WindowedAggregate's output"
                )
            joined_on |= {"window_start", "window_end"}
        names = self._fields if self._fields is not None else [n for n in table_by_name if n not in joined_on]
        missing = [n for n in names if n not in table_by_name]
        if missing:
            raise SchemaError(f"Enrich: fields {missing} are not in the table ({', '.join(table_by_name)})")
        clash = {self._prefix + n for n in names} & set(input_names)
        if clash:
            raise SchemaError(f"Enrich: output fields {sorted(clash)} clash with input fields; set prefix=...")

        row_type = RowTypeConstraint.from_fields(
            [(f.name, f.hint) for f in input_fields]
            + [(self._prefix + n, Optional[table_by_name[n].hint]) for n in names]
        )
        if columnar:
            from hybridflow.columnar.enrich import EnrichTables

            timestamp_field = pcoll.element_type.timestamp_field
            if self._window is not None and timestamp_field is None:
                raise SchemaError(
                    "Enrich: window=... needs the tables' event-time field; declare it with "
                    "arrow_tables(RecordType, timestamp_field) or parse with ParseRecords(..., timestamp_field=...)"
                )
            return pcoll | "JoinTables" >> EnrichTables(
                reference, self._key, table_key, names, self._prefix, self._policy, self.label,
                input_type, table_type, row_type, timestamp_field, self._window,
            )
        args = (self._key, input_names, names, self._prefix, self._policy, self.label)
        if self._handler is not None:
            answers = pcoll | "Lookup" >> Enrichment(
                _KeyedCaller(self._handler, self._key),
                join_fn=_pair,
                timeout=self._timeout,
                use_custom_types=True,
            )
            source, join = answers, beam.ParDo(_LookupJoinFn(*args))
        else:
            # The side input's elements are typed Any on purpose: a schema'd
            # (RowCoder) side input fails on Flink's streaming runner, which
            # copies the decoded Java Rows with Kryo; opaque Python-coded
            # values pass through it as bytes.
            by_window = self._window is not None

            def table_key_of(row):
                key = _key_of(row, table_key)
                return (key, row.window_start.micros) if by_window else key

            lookup = beam.pvalue.AsDict(
                reference
                | "KeyTable" >> beam.Map(lambda row: (table_key_of(row), row)).with_output_types(tuple[Any, Any])
            )
            source, join = pcoll, beam.ParDo(_SideInputJoinFn(*args, window=self._window), lookup)
        result = source | "Join" >> join.with_output_types(row_type).with_outputs(DEAD_LETTERS, main="records")
        result[DEAD_LETTERS].element_type = DeadLetter
        return result
