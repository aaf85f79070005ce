"""HybridRead: the history, then the live stream, as one unbounded PCollection.

A boundary time ``T`` splits the two: the history (bounded files, or any
bounded ``ReadFrom`` source) holds the events before ``T``; the live read
(``kafka://``) starts every partition at its first record whose Kafka
timestamp is at or after ``T`` (Kafka's offsets-for-times, Beam's
``start_read_time``). Both are parsed into the same record type and
flattened. Beam's ``Flatten`` holds its output watermark at the slower input,
and a bounded read's watermark stays at its start until it has read
everything, so no window downstream closes before the history is in (see
docs/hybrid.md for what was measured on Prism).

The seam, where the two may overlap, is the ``horizon`` either side of ``T``
(:class:`Seam`, Beam-free):

- records of either side within the horizon of ``T`` go through
  :class:`~hybridflow.transforms.Dedupe` by ``id_field`` (within
  ``horizon``): a record in both the history and the live stream is kept
  once, the other copy counted in ``hybridflow/duplicates`` and
  ``hybridflow/filtered``;
- records on the wrong side of ``T`` but within the horizon (a history
  export that ran a little past its cut-off; a live record stamped a little
  before ``T`` that Kafka holds after the first one at or after ``T``) are
  kept and deduplicated like the others, and counted
  (``hybrid.history_after_boundary``, ``hybrid.live_before_boundary``);
- records on the wrong side by the horizon or more cannot be checked
  against the other side: they are dead letters with that reason;
- everything else passes untouched (no per-id state away from the seam).

Counters: ``hybrid.history_records``, ``hybrid.live_records`` (parsed
records read from each side), the two above, and Dedupe's. The boundary is
recorded as the ``hybrid.boundary_ms`` gauge of the job.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, NamedTuple, Sequence, Union

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import InvalidOptionError, InvalidUriError, SchemaError
from hybridflow.io.uri import parse_uri
from hybridflow.metrics import NAMESPACE, counter
from hybridflow.schemas import DeadLetter, to_timestamp
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter
from hybridflow.transforms.dedupe import Dedupe
from hybridflow.transforms.parse import ParseRecords

__all__ = ["HybridRead", "HybridOutputs", "Seam", "history_boundary", "HISTORY", "LIVE"]

_LOG = logging.getLogger(__name__)

HISTORY = "history"
LIVE = "live"
_SEAM = "seam"
_LIVE_SCHEMES = ("kafka",)


@dataclasses.dataclass(frozen=True)
class Seam:
    """Where a record of one side goes, by its event time (microseconds).

    ``place(side, t)`` is ``"clear"`` (far from the boundary: passes as is),
    ``"seam"`` (within ``horizon`` of the boundary: deduplicated by id), or a
    dead-letter reason (``history_after_boundary`` / ``live_before_boundary``)
    for a record on the wrong side of the boundary by ``horizon`` or more.

    >>> seam = Seam(boundary_micros=100, horizon_micros=10)
    >>> [seam.place("history", t) for t in (50, 95, 105, 110)]
    ['clear', 'seam', 'seam', 'history_after_boundary']
    >>> [seam.place("live", t) for t in (150, 100, 90, 89)]
    ['clear', 'seam', 'live_before_boundary', 'live_before_boundary']
    """

    boundary_micros: int
    horizon_micros: int

    def place(self, side: str, t: int) -> str:
        offset = t - self.boundary_micros  # >= 0: the live side of the boundary
        if abs(offset) < self.horizon_micros:
            return _SEAM
        if self.is_wrong_side(side, t):
            return wrong_side(side)
        return "clear"

    def is_wrong_side(self, side: str, t: int) -> bool:
        return (t >= self.boundary_micros) if side == HISTORY else (t < self.boundary_micros)


def wrong_side(side: str) -> str:
    """The name of a record on the wrong side of the boundary: its counter and dead-letter reason."""
    return "history_after_boundary" if side == HISTORY else "live_before_boundary"


class _SeamFn(beam.DoFn):
    """One side's records -> main (clear), ``seam``, or dead letters."""

    def __init__(self, seam: Seam, side: str):
        self._seam = seam
        self._side = side

    def setup(self):
        self._read = counter(f"hybrid.{self._side}_records")
        self._wrong_side = counter(f"hybrid.{wrong_side(self._side)}")
        self._dead = DeadLetterCounter()
        self._boundary = Metrics.gauge(NAMESPACE, "hybrid.boundary_ms")

    def start_bundle(self):
        self._boundary.set(self._seam.boundary_micros // 1000)

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        self._read.inc()
        t = timestamp.micros
        place = self._seam.place(self._side, t)
        if place == "clear":
            yield record
        elif place == _SEAM:
            if self._seam.is_wrong_side(self._side, t):
                self._wrong_side.inc()
            yield beam.pvalue.TaggedOutput(_SEAM, record)
        else:
            boundary = Timestamp(micros=self._seam.boundary_micros).to_rfc3339()
            fix = "the history export's cut-off" if self._side == HISTORY else "the producers' timestamps"
            yield self._dead.dead_letter(
                f"HybridRead.{self._side}", place,
                f"event time {timestamp.to_rfc3339()} is on the wrong side of the boundary {boundary} by the "
                f"horizon or more; check {fix}, or widen horizon=",
                record,
            )


class HybridOutputs(NamedTuple):
    """What :class:`HybridRead` returns: the records (one unbounded PCollection), the dead
    letters, and the history's parsed records alone (bounded: for what a batch layer computes
    from the history, e.g. profiles, without reading it twice)."""

    records: Any
    dead_letters: Any
    history: Any = None


def _boundary(value: Union[str, float, Timestamp]) -> Timestamp:
    try:
        return to_timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(
            f"HybridRead: boundary={value!r} is not a time ({exc}); give ISO-8601 text such as "
            "2026-12-07T00:00:00Z or epoch seconds"
        ) from None


def history_boundary(history: str, timestamp_field: str = "event_time", timestamp_unit: str = "s") -> Timestamp:
    """The default boundary of a history in files: one microsecond after its
    latest event time, so that the history holds the events before it.

    Reads only the time field: the files ``history`` matches (local, ``gs://``,
    ``s3://``; JSON lines, compressed or not, or Parquet). Lines that are not
    JSON objects with a readable time are skipped here (the job's parse makes
    them dead letters). Raises :class:`InvalidOptionError` for another kind of
    source, or a history with no event time at all: give the boundary then.
    """
    import json

    from hybridflow.io.files import check_input, decompressed_chunks

    endpoint = parse_uri(history)
    if not endpoint.is_file:
        raise InvalidOptionError(
            f"--history={endpoint.redacted}: the boundary is computed only for a history in files; give "
            "--boundary=TIME (the history export's cut-off, ISO-8601 or epoch seconds)")
    latest = None
    for path in check_input(endpoint.location):
        if path.endswith(".parquet"):
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            from apache_beam.io.filesystems import FileSystems

            with FileSystems.open(path) as f:
                column = pq.read_table(f, columns=[timestamp_field]).column(0)
            values = [pc.max(column).as_py()] if len(column) else []
        else:
            values = []
            for line in _lines(decompressed_chunks(path)):  # chunk by chunk: a large history is not held whole
                try:
                    values.append(json.loads(line)[timestamp_field])
                except (ValueError, KeyError, TypeError):
                    continue
        for value in values:
            try:
                t = to_timestamp(value, timestamp_unit)
            except (TypeError, ValueError, OverflowError):
                continue
            if latest is None or t > latest:
                latest = t
    if latest is None:
        raise InvalidOptionError(
            f"--history={endpoint.redacted}: no record with a readable {timestamp_field!r}; give --boundary=TIME")
    return Timestamp(micros=latest.micros + 1)


def _lines(chunks):
    """The lines of a stream of byte chunks (a line may span chunks)."""
    rest = b""
    for chunk in chunks:
        *lines, rest = (rest + chunk).split(b"\n")
        yield from lines
    if rest:
        yield rest


class HybridRead(beam.PTransform):
    """Reads the history, then continues with the live stream, in one job.

    Args:
      history: a bounded source URI (files: ``out/history/*.jsonl``,
        ``gs://...``; any bounded ``ReadFrom`` source).
      live: the live source: ``kafka://HOST:PORT/TOPIC`` (without
        ``start=``: the live read starts at ``boundary``).
      boundary: the time ``T`` that splits them (ISO-8601 text or epoch
        seconds): the history holds the events before ``T``, the live read
        starts at ``T``. Use the history export's cut-off time.
      schema: the record type (a ``typing.NamedTuple`` class).
      id_field: the field (or tuple of fields) that identifies a record, as
        :class:`~hybridflow.transforms.Dedupe` takes it; records of the seam
        present on both sides are kept once.
      horizon: how far either side of ``T`` records are checked for
        duplicates (seconds or ``"10m"``); default one hour.
      timestamp_field: the event-time field of ``schema``.
      timestamp_unit: the unit of numeric event times (``s``, ``ms``,
        ``us``), as :class:`~hybridflow.transforms.ParseRecords` takes it.

    Returns :class:`HybridOutputs`: ``.records`` (unbounded, stamped with
    their event times), ``.dead_letters`` (unparseable payloads of either
    side, and records on the wrong side of ``T`` by ``horizon`` or more) and
    ``.history`` (the history's parsed records alone, bounded).

    Example::

        read = p | HybridRead("history/*.jsonl", "kafka://broker:9092/transactions",
                              boundary="2026-12-07T00:00:00Z", schema=Transaction, id_field="txn_id")
        read.records | WindowedAggregate(...)
    """

    def __init__(
        self,
        history: str,
        live: str,
        boundary: Union[str, float, Timestamp],
        schema: type,
        id_field: Union[str, Sequence[str]],
        horizon: Union[str, float] = "1h",
        timestamp_field: str = "event_time",
        timestamp_unit: str = "s",
    ):
        super().__init__()
        from hybridflow.io import ReadFrom

        self._boundary = _boundary(boundary)
        try:
            self._dedupe = Dedupe(id_field, within=horizon)  # checks id_field and the horizon (its within=)
        except SchemaError as exc:
            raise InvalidOptionError(f"HybridRead(id_field={id_field!r}, horizon={horizon!r}): {exc}") from None
        self._seam = Seam(self._boundary.micros, round(parse_duration(horizon) * 1_000_000))
        self._history = ReadFrom(history, bounded=True)
        self._live = _live_reader(live, self._boundary)
        self._history_uri = parse_uri(history).redacted
        self._live_uri = parse_uri(live).redacted
        self._schema = schema
        self._timestamp_field = timestamp_field
        self._timestamp_unit = timestamp_unit
        # checks the schema, the field and the unit now
        ParseRecords(schema, timestamp_field=timestamp_field, timestamp_unit=timestamp_unit)

    @property
    def boundary(self) -> Timestamp:
        """The boundary time ``T``."""
        return self._boundary

    def expand(self, pbegin):
        _LOG.info("HybridRead: history %s (events before %s), then live %s from that time", self._history_uri,
                  self._boundary.to_rfc3339(), self._live_uri)
        sides = {}
        dead = []
        for side, read in ((HISTORY, self._history), (LIVE, self._live)):
            raw = pbegin | f"Read{side.title()}" >> read
            if side == HISTORY and not raw.is_bounded:
                raise InvalidUriError(f"HybridRead: history={self._history_uri!r} is unbounded; name a bounded "
                                      "source (files, bigquery://, postgresql://)")
            parsed = raw | f"Parse{side.title()}" >> ParseRecords(
                self._schema, timestamp_field=self._timestamp_field, timestamp_unit=self._timestamp_unit,
                stage=f"HybridRead.{side}")
            placed = parsed.records | f"Seam{side.title()}" >> beam.ParDo(_SeamFn(self._seam, side)).with_outputs(
                _SEAM, DEAD_LETTERS, main="clear")
            placed.clear.element_type = placed[_SEAM].element_type = self._schema
            sides[side] = placed
            if side == HISTORY:
                history_records = parsed.records
            dead += [parsed.dead_letters, placed[DEAD_LETTERS]]
        seam = (
            [sides[HISTORY][_SEAM], sides[LIVE][_SEAM]]
            | "FlattenSeam" >> beam.Flatten().with_output_types(self._schema)
            | "DedupeSeam" >> self._dedupe
        )
        records = [sides[HISTORY].clear, sides[LIVE].clear, seam] | "Flatten" >> beam.Flatten().with_output_types(
            self._schema)
        dead_letters = dead | "FlattenDeadLetters" >> beam.Flatten().with_output_types(DeadLetter)
        return HybridOutputs(records, dead_letters, history_records)


def _live_reader(uri: str, boundary: Timestamp) -> beam.PTransform:
    endpoint = parse_uri(uri)
    if endpoint.scheme not in _LIVE_SCHEMES:
        raise InvalidUriError(f"HybridRead: live={endpoint.redacted!r}; the live source must be kafka://HOST:PORT/TOPIC "
                              "(the only one that can start at the boundary time here)")
    if endpoint.param("start") is not None:
        raise InvalidUriError(f"HybridRead: live={endpoint.redacted!r}: remove start=; the live read starts at the "
                              "boundary")
    from hybridflow.io import kafka

    return kafka.reader(endpoint, None, start_time=boundary)
