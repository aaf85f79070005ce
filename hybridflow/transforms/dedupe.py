"""Dedupe: drop records whose id was already seen within a period of event time.

The id is one field or several (a composite key such as ``("machine",
"sensor", "ts")``). The rule, the same bounded or unbounded: per id, take the
records in event-time order (ties broken by the record's JSON text, so the
choice is stable); keep the first; drop every record of that id less than ``within``
after the last kept one; the first record at or past that point is kept
again, and so on. Dropped records are counted (``hybridflow/duplicates`` and
``hybridflow/filtered``), never lost silently.

On a bounded input this is a GroupByKey per id. On an unbounded input it is a
stateful DoFn per id that emits the first record of an id as soon as it
arrives and remembers its event time; a later record of that id less than
``within`` away (before or after) is dropped; an event-time timer forgets the
id once the watermark passes ``within`` after the last kept record. So the
two agree whenever the records of one id arrive in event-time order, which
includes every re-delivery of the same record (equal times, and the same
record whichever copy is kept). A duplicate that arrives *before* an earlier
copy of itself is where they differ: streaming kept the first to arrive. So
does a tie (two different records with the same id and event time): batch
keeps the one whose JSON text sorts first, whatever the input order;
streaming keeps the one that arrived first.
Emitting on arrival (rather than when the watermark passes) keeps latency low
and needs no output watermark hold.
"""

from __future__ import annotations

import typing
from typing import Any, Sequence, Union

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.metrics import EventTimeLag, counter
from hybridflow.schemas import fields_of, to_json
from hybridflow.transforms.sketches import canonical

__all__ = ["Dedupe"]


def _order(t_micros: int, record: Any):
    return (t_micros, to_json(record))


class _Counters:
    def setup(self):
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._duplicates = counter("duplicates")
        self._filtered = counter("filtered")
        self._lag = EventTimeLag()

    def _received(self, t_micros: int):
        self._in.inc()
        self._lag.observe(Timestamp(micros=t_micros))

    def _drop(self):
        self._duplicates.inc()
        self._filtered.inc()


class _DedupeGroup(_Counters, beam.DoFn):
    """Batch: (id, records) -> the kept records, at their event times."""

    def __init__(self, within_micros: int):
        self._within = within_micros

    def process(self, element):
        _, stamped = element
        last = None
        for t, _, record in sorted((_order(t, r) + (r,) for t, r in stamped), key=lambda x: x[:2]):
            self._received(t)
            if last is not None and t - last < self._within:
                self._drop()
                continue
            last = t
            self._out.inc()
            yield beam.window.TimestampedValue(record, Timestamp(micros=t))


class _StampFn(beam.DoFn):
    """record -> (id, (event time in micros, record)). The id is the canonical
    bytes of the id fields' values: one deterministic key coder for every field
    type (a ``Timestamp`` has no deterministic coder of its own)."""

    def __init__(self, id_fields: tuple[str, ...]):
        self._id_fields = id_fields

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        yield canonical(tuple(getattr(record, name) for name in self._id_fields)), (timestamp.micros, record)


def _id_fields(id_field: Union[str, Sequence[str]]) -> tuple[str, ...]:
    """The field names of ``id_field`` (one name, or a tuple/list of names)."""
    names = (id_field,) if isinstance(id_field, str) else id_field
    if not isinstance(names, (tuple, list)) or not names or not all(isinstance(n, str) and n for n in names):
        raise SchemaError(
            f"Dedupe: id_field={id_field!r}; give a field name or a tuple/list of field names, "
            'e.g. "txn_id" or ("machine", "sensor", "ts")'
        )
    if len(set(names)) != len(names):
        raise SchemaError(f"Dedupe: id_field={id_field!r} names a field twice")
    return tuple(names)


class _DedupeStreaming(_Counters, beam.DoFn):
    """Streaming: per id, the time of the last kept record until ``within`` after it."""

    LAST_KEPT = ReadModifyWriteStateSpec("last_kept", VarIntCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, within_micros: int):
        self._within = within_micros

    def process(
        self,
        element,
        last_state=beam.DoFn.StateParam(LAST_KEPT),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, (t, record) = element
        self._received(t)
        last = last_state.read()
        if last is not None and abs(t - last) < self._within:
            self._drop()
        else:
            if last is None or t > last:
                last_state.write(t)
                # Portable runners keep timers in milliseconds: expire at the
                # millisecond after last + within (see `expire`).
                end = t + self._within
                expiry.set(Timestamp(micros=end - end % 1000))
            self._out.inc()
            yield record  # keeps its event-time timestamp

    @on_timer(EXPIRY)
    def expire(self, fire_time=beam.DoFn.TimestampParam, last_state=beam.DoFn.StateParam(LAST_KEPT)):
        # The watermark has passed the timer's millisecond: everything up to
        # its last microsecond is due.
        now = fire_time.micros - fire_time.micros % 1000 + 999
        last = last_state.read()
        if last is not None and last + self._within <= now:
            last_state.clear()  # the id is new again


class Dedupe(beam.PTransform):
    """Drops records whose ``id_field`` was seen less than ``within`` earlier (event time).

    Per id (one field, or a composite of several) the earliest record (by
    event time, then a stable tie-break) is kept; later records of that id within ``within`` of it are dropped and
    counted in ``hybridflow/duplicates`` (and ``hybridflow/filtered``); a
    record ``within`` or more after the last kept one is kept again. Bounded
    input: exact, by grouping per id. Unbounded input: a stateful DoFn that
    emits the first record of an id on arrival and forgets the id (event-time
    timer) ``within`` after its last kept record; batch and streaming agree
    when each id's records arrive in event-time order (always true for
    re-deliveries of one record). Ties (different records with the same id
    and event time): batch keeps the one whose JSON text sorts first, in any
    input order; streaming keeps the first to arrive. The output has the
    input's type (records, for Arrow tables of records), element timestamps
    and windowing.

    Args:
      id_field: the field that identifies a record (``txn_id``, ``event_id``),
        or a tuple/list of fields that together do (``("machine", "sensor",
        "ts")``); checked against the input's schema when applied.
      within: how long an id is remembered, in event time (seconds or
        ``"10m"``); duplicates further apart are both kept.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import Dedupe
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> txns = transactions([("c1", 10.0, 5), ("c1", 10.0, 20), ("c2", 3.0, 7)])
        >>> txns = [txns[0], txns[1]._replace(txn_id="t0"), txns[2]]  # t0 sent twice
        >>> with batch_pipeline() as p:
        ...     unique = p | CreateEvents(txns) | Dedupe("txn_id", within="1h")
        ...     _ = (unique | beam.Map(lambda t: t.txn_id) | beam.combiners.ToList()
        ...                 | beam.Map(lambda ids: print(sorted(ids))))
        ['t0', 't2']
    """

    def __init__(self, id_field: Union[str, Sequence[str]], within: Union[float, str] = "1h"):
        super().__init__()
        self._id_fields = _id_fields(id_field)
        try:
            seconds = parse_duration(within)
        except ValueError as exc:
            raise SchemaError(f"Dedupe.within: {exc}") from None
        if seconds <= 0:
            raise SchemaError(f"Dedupe.within must be > 0, got {within!r}")
        self._within = round(seconds * 1_000_000)

    def expand(self, pcoll):
        from hybridflow.columnar import ToRecords, is_columnar

        if is_columnar(pcoll):  # Arrow tables (the columnar batch path): dedupe their records
            pcoll = pcoll | "ToRecords" >> ToRecords()
        fields = {f.name: f for f in fields_of(pcoll.element_type)}
        for name in self._id_fields:
            if name not in fields:
                raise SchemaError(f"Dedupe: id_field {name!r} is not a field of the input ({', '.join(fields)})")
            if fields[name].is_list:
                raise SchemaError(f"Dedupe: id_field {name!r} is a list; use scalar fields")
        record_type = pcoll.element_type
        stamped = (
            pcoll
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyById" >> beam.ParDo(_StampFn(self._id_fields)).with_output_types(
                typing.Tuple[bytes, typing.Tuple[int, record_type]]
            )
        )
        if pcoll.is_bounded:
            unique = (
                stamped
                | "GroupById" >> beam.GroupByKey()
                | "KeepFirst" >> beam.ParDo(_DedupeGroup(self._within)).with_output_types(record_type)
            )
        else:
            unique = stamped | "KeepFirst" >> beam.ParDo(_DedupeStreaming(self._within)).with_output_types(
                record_type
            )
        windowfn = pcoll.windowing.windowfn
        if not isinstance(windowfn, beam.window.GlobalWindows):
            unique = unique | "Rewindow" >> beam.WindowInto(windowfn)
        return unique
