"""WindowedAggregate: keyed event-time window aggregation, batch or streaming.

On a bounded input it is Beam's own ``WindowInto`` + ``CombinePerKey``: one
pane per window. On an unbounded input it runs as a stateful DoFn in the
global window that keeps one accumulator per key and window and fires panes
from event-time timers. Doing the windowing by hand is what makes records
later than the allowed lateness an explicit ``late`` output: a GroupByKey
would drop them silently.

Lateness is judged against what the key has learnt of the watermark: when a
timer set at time T fires, the watermark has passed T. A key that has not yet
had a timer fire (its first records, or after all its windows closed and a
long silence) may therefore accept a record that Beam would call droppable;
such a record still reaches the output, in a pane, never nowhere.

Both paths use the same exact accumulator
(:mod:`hybridflow.transforms.aggregations`), so the final pane of each window
is identical batch or streaming. A bounded PCollection of Arrow tables
(:mod:`hybridflow.columnar`) runs vectorized with the same results.
"""

from __future__ import annotations

import bisect
import dataclasses
import typing
from typing import Any, Mapping, Sequence, Union

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.typehints.row_type import RowTypeConstraint
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.metrics import EventTimeLag, counter
from hybridflow.schemas import LateRecord, fields_of, to_json
from hybridflow.transforms.aggregations import Accumulator, AggregationsLike, parse_aggregations
from hybridflow.transforms.windows import (
    Accumulation,
    PaneTiming,
    TriggerSpec,
    WindowSpec,
    trigger_spec,
    window_spec,
)

__all__ = ["WindowedAggregate", "LATE", "RESERVED"]

LATE = "late"
#: The fields WindowedAggregate adds to every output row: neither a key nor an
#: aggregation may be named so.
RESERVED = ("window_start", "window_end", "pane", "pane_index")

KeyLike = Union[str, Sequence[str], None]


def key_fields(key: KeyLike, stage: str) -> tuple[str, ...]:
    """``key=`` as a tuple of field names: one field, several (a composite
    key) or none (``None``: one group per window)."""
    names = () if key is None else (key,) if isinstance(key, str) else tuple(key)
    if not all(isinstance(n, str) and n for n in names):
        raise SchemaError(f"{stage}: key={key!r}; give a field name, a list of field names or None")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(f"{stage}: key fields {repeated} are repeated; name each field once")
    return names


class Keys:
    """The key of a record: one field's value, the tuple of several fields'
    values, or ``0`` for every record when there is no key field."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)

    def of(self, record):
        names = self.names
        if len(names) == 1:
            return getattr(record, names[0])
        if not names:
            return 0
        return tuple(getattr(record, n) for n in names)

    def values(self, key) -> dict:
        """The key fields of an output row, from a key :meth:`of` returned."""
        if len(self.names) == 1:
            return {self.names[0]: key}
        return dict(zip(self.names, key)) if self.names else {}

    def text(self, key) -> str:
        return "" if not self.names else str(key)

    def type(self, row_type: RowTypeConstraint):
        """The key's type hint, from the output row type holding the key fields."""
        types = [row_type.get_type_for(n) for n in self.names]
        if len(types) == 1:
            return types[0]
        return typing.Tuple[tuple(types)] if types else int

    def check(self, fields, stage: str) -> None:
        by_name = {f.name for f in fields}
        missing = [n for n in self.names if n not in by_name]
        if missing:
            raise SchemaError(
                f"{stage}: key {missing[0]!r} is not a field of the input ({', '.join(f.name for f in fields)})"
            )


class EventTimeWindows:
    """The windows of a record: those its event time falls in (the window spec's arithmetic)."""

    def __init__(self, window: WindowSpec):
        self.window = window

    def __call__(self, record, micros: int):
        return self.window.assign(micros)


class AggregateRows:
    """The output row of one pane: the key fields, the window, the pane and the aggregates."""

    def __init__(self, keys: Keys, accumulator: Accumulator):
        self._keys = keys
        self._acc = accumulator

    def __call__(self, key, start: int, end: int, timing: PaneTiming, index: int, acc) -> list:
        return [
            beam.Row(
                **self._keys.values(key),
                window_start=Timestamp(micros=start),
                window_end=Timestamp(micros=end),
                pane=timing.value,
                pane_index=index,
                **self._acc.extract(acc),
            )
        ]


class _AggregateCombineFn(beam.CombineFn):
    def __init__(self, accumulator: Accumulator):
        self._acc = accumulator

    def create_accumulator(self):
        return self._acc.create()

    def add_input(self, acc, record):
        return self._acc.add(acc, record)

    def merge_accumulators(self, accs):
        return self._acc.merge(accs)

    def extract_output(self, acc):
        return acc  # rows are built with the window in _BatchRows


class _AssignWindows(beam.DoFn):
    """(key, record) -> ((key, start, end), record) per window (fixed / sliding)."""

    def __init__(self, assign):
        self._assign = assign

    def setup(self):
        self._in = counter("records_in")
        self._lag = EventTimeLag()

    def process(self, element, timestamp=beam.DoFn.TimestampParam):
        key, record = element
        self._in.inc()
        self._lag.observe(timestamp)
        for start, end in self._assign(record, timestamp.micros):
            yield (key, start, end), record


class _BatchRows(beam.DoFn):
    """((key, start, end), accumulator) -> the ON_TIME rows at the window's end."""

    def __init__(self, rows):
        self._rows = rows

    def setup(self):
        self._out = counter("records_out")

    def process(self, element):
        (key, start, end), acc = element
        for row in self._rows(key, start, end, PaneTiming.ON_TIME, 0, acc):
            self._out.inc()
            yield beam.window.TimestampedValue(row, Timestamp(micros=end - 1))


class _Sessions(beam.CombineFn):
    """Sessions of one key, built by the combiner itself (no merging WindowFn).

    The accumulator is a list of ``[start, end, accumulator]`` sorted by
    start, never overlapping: a record is the session ``[t, t + gap)`` and
    joins every session it overlaps, exactly as Beam's ``Sessions`` merges
    windows (and as the streaming path does). Partial lists merge the same
    way, so the result does not depend on bundling or order. Beam's own
    merging windows are not used because Prism merges them wrongly in batch
    (sessions split or lost); this gives the same sessions on every runner.
    """

    def __init__(self, accumulator: Accumulator, window: WindowSpec):
        self._acc = accumulator
        self._window = window

    def create_accumulator(self):
        return []

    def _insert(self, sessions: list, start: int, end: int, acc: list) -> list:
        i = bisect.bisect_left(sessions, start, key=lambda s: s[0])
        first, last = i, i
        if first > 0 and sessions[first - 1][1] > start:  # overlaps the one before
            first -= 1
        while last < len(sessions) and sessions[last][0] < end:  # and the ones after
            last += 1
        if first == last:
            sessions.insert(i, [start, end, acc])
            return sessions
        joined = sessions[first:last]
        merged = [
            min(start, joined[0][0]),
            max(end, max(s[1] for s in joined)),
            self._acc.merge([acc, *(s[2] for s in joined)]),
        ]
        sessions[first:last] = [merged]
        return sessions

    def add_input(self, sessions, timed_record):
        micros, record = timed_record
        ((start, end),) = self._window.assign(micros)
        return self._insert(sessions, start, end, self._acc.add(self._acc.create(), record))

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        result = [list(s) for s in next(accumulators, [])]
        for other in accumulators:
            for start, end, acc in other:
                result = self._insert(result, start, end, acc)
        return result

    def extract_output(self, sessions):
        return sessions


class _WithTime(beam.DoFn):
    """(key, record) -> (key, (event time, record)), the time in microseconds
    cut to the millisecond: Beam's portable wire format carries timestamps in
    milliseconds, so the streaming path (after its keyed shuffle) and Beam's
    own windows see them that way too, on every runner."""

    def setup(self):
        self._in = counter("records_in")

    def process(self, element, timestamp=beam.DoFn.TimestampParam):
        key, record = element
        self._in.inc()
        micros = timestamp.micros
        yield key, (micros - micros % 1000, record)


def _session_windows(element):
    key, sessions = element
    for start, end, acc in sessions:
        yield (key, start, end), acc


@dataclasses.dataclass
class _Window:
    """Streaming state of one (key, window)."""

    total: list
    delta: list
    fired: bool = False  # the on-time pane has fired
    index: int = 0  # index of the next pane
    new: int = 0  # records since the last pane


class _StreamingAggregate(beam.DoFn):
    """Per key: accumulators per window, panes from event-time timers."""

    # (the watermark this key's timers have seen, {window bounds: _Window}) in
    # one cell: on portable runners every cell is a state request per key and
    # bundle (Prism sends no cache tokens), one cell halves them
    STATE = ReadModifyWriteStateSpec("windows", PickleCoder())
    EVENT_TIMER = TimerSpec("event", TimeDomain.WATERMARK)

    def __init__(self, keys: Keys, window: WindowSpec, assign, accumulator, rows, trigger: TriggerSpec,
                 lateness_micros, stage):
        self._keys = keys
        self._window = window
        self._assign = assign
        self._acc = accumulator
        self._rows = rows
        self._trigger = trigger
        self._lateness = lateness_micros
        self._stage = stage

    def setup(self):
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._late = counter("late_records")
        self._lag = EventTimeLag()

    # -- panes --------------------------------------------------------------

    def _pane(self, key, bounds, win: _Window, timing: PaneTiming):
        accumulating = self._trigger.accumulation is Accumulation.ACCUMULATING
        rows = self._rows(key, bounds[0], bounds[1], timing, win.index, win.total if accumulating else win.delta)
        win.index += 1
        win.new = 0
        win.delta = self._acc.create()
        for row in rows:
            self._out.inc()
            yield beam.window.TimestampedValue(row, Timestamp(micros=bounds[1] - 1))

    def _deadline(self, bounds, win: _Window) -> int:
        max_ts = bounds[1] - 1
        return max_ts + self._lateness if win.fired else max_ts

    @staticmethod
    def _load(state):
        """(known watermark in micros, windows) of the current key."""
        value = state.read()
        return value if value is not None else (MIN_TIMESTAMP.micros, {})

    def _arm(self, windows: Mapping, timer):
        if windows:
            deadline = min(self._deadline(b, w) for b, w in windows.items())
            # Portable runners keep timers in milliseconds: set the timer at
            # the millisecond holding the deadline (see on_event_time).
            timer.set(Timestamp(micros=deadline - deadline % 1000))

    # -- windows ------------------------------------------------------------

    def _merge_session(self, windows: dict, bounds):
        """Merges ``bounds`` with overlapping sessions; returns the merged bounds."""
        start, end = bounds
        merged = []
        for other in sorted(windows):
            if other[0] < end and start < other[1]:
                merged.append(other)
                start, end = min(start, other[0]), max(end, other[1])
        if not merged or merged == [(start, end)]:
            return (start, end)
        parts = [windows.pop(b) for b in merged]
        windows[(start, end)] = _Window(
            total=self._acc.merge(p.total for p in parts),
            delta=self._acc.merge(p.delta for p in parts),
            fired=any(p.fired for p in parts),
            index=max(p.index for p in parts),
            new=sum(p.new for p in parts),
        )
        return (start, end)

    def process(
        self,
        element,
        timestamp=beam.DoFn.TimestampParam,
        state=beam.DoFn.StateParam(STATE),
        event_timer=beam.DoFn.TimerParam(EVENT_TIMER),
    ):
        key, record = element
        self._in.inc()
        self._lag.observe(timestamp)
        t = timestamp.micros
        known_watermark, windows = self._load(state)
        for bounds in sorted(self._assign(record, t)):  # earliest window first
            if bounds[1] - 1 + self._lateness < known_watermark:
                self._late.inc()
                yield beam.pvalue.TaggedOutput(
                    LATE,
                    LateRecord(
                        stage=self._stage,
                        key=self._keys.text(key),
                        window_start=Timestamp(micros=bounds[0]),
                        window_end=Timestamp(micros=bounds[1]),
                        event_time=timestamp,
                        record=to_json(record),
                    ),
                )
                continue
            if self._window.merging:
                if bounds not in windows:
                    windows[bounds] = _Window(self._acc.create(), self._acc.create())
                bounds = self._merge_session(windows, bounds)
            win = windows.get(bounds)
            if win is None:
                win = windows[bounds] = _Window(self._acc.create(), self._acc.create())
            self._acc.add(win.total, record)
            self._acc.add(win.delta, record)
            win.new += 1
            if win.fired:
                if win.new >= self._trigger.late_count:
                    yield from self._pane(key, bounds, win, PaneTiming.LATE)
            elif self._trigger.early_count is not None and win.new >= self._trigger.early_count:
                yield from self._pane(key, bounds, win, PaneTiming.EARLY)
        state.write((known_watermark, windows))
        self._arm(windows, event_timer)

    @on_timer(EVENT_TIMER)
    def on_event_time(
        self,
        key=beam.DoFn.KeyParam,
        fire_time=beam.DoFn.TimestampParam,
        state=beam.DoFn.StateParam(STATE),
        event_timer=beam.DoFn.TimerParam(EVENT_TIMER),
    ):
        # The watermark has passed the timer's millisecond: everything up to
        # its last microsecond is due.
        now = fire_time.micros - fire_time.micros % 1000 + 999
        known_watermark, windows = self._load(state)
        known_watermark = max(known_watermark, now + 1)
        for bounds in sorted(windows):
            win = windows[bounds]
            if not win.fired and bounds[1] - 1 <= now:
                win.fired = True
                yield from self._pane(key, bounds, win, PaneTiming.ON_TIME)
            if win.fired and bounds[1] - 1 + self._lateness <= now:
                if win.new:  # late records not yet emitted (late_count > 1)
                    yield from self._pane(key, bounds, win, PaneTiming.LATE)
                del windows[bounds]
        state.write((known_watermark, windows))
        self._arm(windows, event_timer)


class _StreamingAggregateWithEarlyTimer(_StreamingAggregate):
    """Adds processing-time early firings every ``trigger.early_every`` seconds."""

    EARLY_TIMER = TimerSpec("early", TimeDomain.REAL_TIME)
    EARLY_ARMED = ReadModifyWriteStateSpec("early_armed", VarIntCoder())

    def process(
        self,
        element,
        timestamp=beam.DoFn.TimestampParam,
        state=beam.DoFn.StateParam(_StreamingAggregate.STATE),
        event_timer=beam.DoFn.TimerParam(_StreamingAggregate.EVENT_TIMER),
        early_armed=beam.DoFn.StateParam(EARLY_ARMED),
        early_timer=beam.DoFn.TimerParam(EARLY_TIMER),
    ):
        yield from super().process(element, timestamp, state, event_timer)
        if not early_armed.read():
            early_armed.write(1)
            early_timer.set(Timestamp.now() + self._trigger.early_every)

    @on_timer(EARLY_TIMER)
    def on_processing_time(
        self,
        key=beam.DoFn.KeyParam,
        state=beam.DoFn.StateParam(_StreamingAggregate.STATE),
        early_armed=beam.DoFn.StateParam(EARLY_ARMED),
    ):
        early_armed.clear()
        known_watermark, windows = self._load(state)
        for bounds in sorted(windows):
            win = windows[bounds]
            if not win.fired and win.new:
                yield from self._pane(key, bounds, win, PaneTiming.EARLY)
        state.write((known_watermark, windows))


class WindowedAggregate(beam.PTransform):
    """Aggregates records per key and event-time window.

    Output rows (``beam.Row`` with a schema, in the global window, timestamped
    at the end of their window) carry the key field, the window
    (``window_start``, ``window_end``), the pane (``pane``: EARLY, ON_TIME or
    LATE; ``pane_index``) and one field per aggregation. Bounded input gives
    exactly one ON_TIME pane per key and window. Unbounded input fires an
    ON_TIME pane when the watermark passes the end of the window, EARLY panes
    as the trigger asks, and a LATE pane for records within
    ``allowed_lateness``; records later than that go to the ``late`` output
    (:class:`~hybridflow.schemas.LateRecord`), counted in
    ``hybridflow/late_records``.

    Args:
      key: the key field of the input records; a list of fields for a
        composite key (``["machine", "sensor"]``: each becomes an output
        field); ``None`` for one group per window (no key field in the output).
      window: a window spec or its text/dict form (``sliding:10m/1m``).
      aggregations: ``{"n": "count", "total": "sum(amount)"}`` or a list of
        :class:`~hybridflow.transforms.aggregations.Aggregation`. Functions:
        count, sum, min, max, mean, stddev, count_distinct (``sum``, ``min``
        and ``max`` of an ``int`` field are exact ``int`` s), and the
        approximate approx_distinct(field) and percentile(field, q) / pNN(field)
        (1 % relative error; p50 of 5 and 10 above is 5.02).
      trigger: a :class:`TriggerSpec` or dict (``{"early_every": "10s"}``).
      allowed_lateness: how long after the end of a window records are still
        counted (seconds or ``"5m"``).

    Returns a tuple-like result ``(aggregates, late)`` with attributes
    ``.aggregates`` and ``.late``.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import WindowedAggregate
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> with batch_pipeline() as p:
        ...     out = (p | CreateEvents(transactions([("c1", 10.0, 5), ("c1", 5.0, 20), ("c1", 7.5, 70)]))
        ...              | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={
        ...                    "n": "count", "total": "sum(amount)", "p50": "p50(amount)"}))
        ...     _ = (out.aggregates | beam.Map(lambda r: (r.window_start, r.n, r.total, round(r.p50, 2), r.pane))
        ...                         | beam.combiners.ToList() | beam.FlatMap(sorted) | beam.Map(print))
        (Timestamp(1767225600), 2, 15.0, 5.02, 'ON_TIME')
        (Timestamp(1767225660), 1, 7.5, 7.5, 'ON_TIME')
    """

    def __init__(
        self,
        key: KeyLike,
        window: Union[WindowSpec, Mapping[str, Any], str],
        aggregations: AggregationsLike,
        trigger: Union[TriggerSpec, Mapping[str, Any], None] = None,
        allowed_lateness: Union[float, str] = 0,
    ):
        super().__init__()
        self._keys = Keys(key_fields(key, "WindowedAggregate"))
        self._window = window_spec(window)
        self._aggregations = parse_aggregations(aggregations)
        self._trigger = trigger_spec(trigger)
        try:
            self._lateness = parse_duration(allowed_lateness)
        except ValueError as exc:
            raise SchemaError(f"WindowedAggregate.allowed_lateness: {exc}") from None
        reserved = sorted(set(self._keys.names) & set(RESERVED))
        if reserved:
            raise SchemaError(
                f"WindowedAggregate: key field {reserved} is named like an output field the transform adds "
                f"({', '.join(RESERVED)}); rename the field first"
            )
        clash = sorted({a.name for a in self._aggregations} & (set(RESERVED) | set(self._keys.names)))
        if clash:
            raise SchemaError(
                f"WindowedAggregate: aggregation names {clash} clash with output fields "
                f"({', '.join(self._keys.names + RESERVED)}); choose other names"
            )

    def _row_type(self, input_fields) -> RowTypeConstraint:
        by_name = {f.name: f for f in input_fields}
        self._keys.check(input_fields, "WindowedAggregate")
        for agg in self._aggregations:
            if agg.field is not None and agg.field not in by_name:
                raise SchemaError(
                    f"WindowedAggregate: aggregation {agg.name!r} reads {agg.field!r}, which is "
                    f"not a field of the input ({', '.join(by_name)})"
                )
            if agg.fn not in ("count", "count_distinct", "approx_distinct") and by_name[agg.field].type not in (int, float):
                raise SchemaError(
                    f"WindowedAggregate: {agg.fn}({agg.field}) needs a numeric field"
                )
        return RowTypeConstraint.from_fields(
            [(n, by_name[n].hint) for n in self._keys.names]
            + [
                ("window_start", Timestamp),
                ("window_end", Timestamp),
                ("pane", str),
                ("pane_index", int),
            ]
            + [(a.name, a.output_type_for(by_name[a.field].type if a.field else None)) for a in self._aggregations]
        )

    def _accumulator(self, input_fields) -> Accumulator:
        return Accumulator(self._aggregations, [f.name for f in input_fields if f.type is int and not f.is_list])

    def _expand_columnar(self, pcoll):
        """Arrow tables of records (bounded): vectorized fixed and sliding windows."""
        from hybridflow.columnar import ToRecords, ToTables
        from hybridflow.columnar.aggregate import AggregateTables

        hint = pcoll.element_type
        row_type = self._row_type(hint.fields)
        if not pcoll.is_bounded:
            raise SchemaError("WindowedAggregate: Arrow-table input must be bounded")
        if hint.timestamp_field is None:
            raise SchemaError(
                "WindowedAggregate: the Arrow tables carry no event-time field; parse them with "
                "ParseRecords(..., timestamp_field=...)"
            )
        if self._window.merging:  # sessions merge per key: Beam's own merging, per element
            per_element = (pcoll | "ToRecords" >> ToRecords()) | "PerElement" >> WindowedAggregate(
                self._keys.names, self._window, self._aggregations, self._trigger, self._lateness
            )
            aggregates = per_element.aggregates | "ToTables" >> ToTables(record_type=row_type)
        else:
            aggregates = pcoll | "Aggregate" >> AggregateTables(
                self._keys.names, self._window, self._aggregations, row_type, hint.timestamp_field,
                accumulator=self._accumulator(hint.fields),
            )
        late = pcoll.pipeline | "NoLateRecords" >> beam.Create([]).with_output_types(LateRecord)
        return _Result(aggregates, late)

    def expand(self, pcoll):
        from hybridflow.columnar import is_columnar

        if is_columnar(pcoll):
            return self._expand_columnar(pcoll)
        fields = fields_of(pcoll.element_type)
        row_type = self._row_type(fields)
        accumulator = self._accumulator(fields)
        return aggregate_records(
            pcoll, self._keys, self._window, EventTimeWindows(self._window), accumulator,
            AggregateRows(self._keys, accumulator), row_type, self._trigger, self._lateness, self.label,
        )


def aggregate_records(pcoll, keys: Keys, window: WindowSpec, assign, accumulator, rows, row_type,
                      trigger: TriggerSpec, lateness: float, stage: str):
    """The per-element engine behind WindowedAggregate (and TopPerWindow):
    records grouped by key and by the windows ``assign(record, micros)``
    gives, folded with ``accumulator``, each pane turned into output rows by
    ``rows(key, start, end, timing, index, accumulator state)``. Bounded input:
    one ON_TIME pane per key and window; unbounded: panes from timers, and a
    ``late`` output."""
    key_type = keys.type(row_type)
    keyed = pcoll | "KeyBy" >> beam.Map(lambda r: (keys.of(r), r)).with_output_types(
        typing.Tuple[key_type, pcoll.element_type]
    )
    if pcoll.is_bounded:
        # Windows are assigned here, with the same arithmetic as the
        # streaming path, and aggregated in the global window: Beam's
        # windowed GroupByKey in Python pays a trigger-driver call per
        # key and window. Sessions are merged by the combiner (_Sessions).
        window_key = typing.Tuple[key_type, int, int]
        if window.merging:
            per_window = (
                keyed
                | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
                | "WithTime" >> beam.ParDo(_WithTime())
                | "Sessions" >> beam.CombinePerKey(_Sessions(accumulator, window))
                | "SessionWindows" >> beam.FlatMap(_session_windows).with_output_types(
                    typing.Tuple[window_key, typing.Any]
                )
            )
        else:
            per_window = (
                keyed
                | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
                | "AssignWindows" >> beam.ParDo(_AssignWindows(assign)).with_output_types(
                    typing.Tuple[window_key, pcoll.element_type]
                )
                | "Aggregate" >> beam.CombinePerKey(_AggregateCombineFn(accumulator))
            )
        aggregates = per_window | "ToRows" >> beam.ParDo(_BatchRows(rows)).with_output_types(row_type)
        late = pcoll.pipeline | "NoLateRecords" >> beam.Create([]).with_output_types(LateRecord)
        return _Result(aggregates, late)
    fn_class = _StreamingAggregateWithEarlyTimer if trigger.early_every else _StreamingAggregate
    fn = fn_class(keys, window, assign, accumulator, rows, trigger, round(lateness * 1e6), stage)
    result = (
        keyed
        | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
        | "Aggregate" >> beam.ParDo(fn).with_output_types(row_type).with_outputs(LATE, main="aggregates")
    )
    result[LATE].element_type = LateRecord
    return _Result(result.aggregates, result[LATE])


class _Result(tuple):
    """``(aggregates, late)`` with attribute access."""

    def __new__(cls, aggregates, late):
        return super().__new__(cls, (aggregates, late))

    @property
    def aggregates(self):
        return self[0]

    @property
    def late(self):
        return self[1]
