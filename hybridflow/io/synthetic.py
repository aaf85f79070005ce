"""Deterministic generators of realistic records: ``synthetic://STREAM?...``.

``synthetic://transactions?count=10000&seed=7`` is bounded;
``synthetic://transactions?rate=200&duration=60`` is unbounded (a
``PeriodicImpulse`` drives it at ``rate`` events per second of processing time
and stops after ``duration`` seconds, or never).

A stream is a :class:`SyntheticStream` subclass: a frozen dataclass whose
fields are the URI's parameters and whose :meth:`SyntheticStream.record`
returns the JSON text of record ``i``. Pipelines bring their streams
(``PipelineSpec.generators``: the fraud pipeline's ``transactions``, the iot
pipeline's ``readings`` ...); :func:`synthetic_stream` finds one by name
among the installed pipelines.

Every record is a function of ``(seed, index)`` only, so a bounded read, an
unbounded read and :func:`generate_records` called from a test produce the
same records for the same indices. Event time of record ``i`` is
``start + i / rate`` plus the configured disorder; unbounded reads without an
explicit ``start`` use the time the pipeline starts.

The parameters every stream shares: ``seed``, ``count``, ``rate``,
``duration``, ``start``, ``bounded`` and the shares of imperfect records:
out-of-order (``disorder``, up to ``max_delay`` seconds early), late
(``late``, ``late_delay`` to twice that behind) and malformed (``malformed``:
broken JSON, missing fields, bad values; what "bad" means is the stream's).

Output elements are the raw JSON text of each record, exactly what a Kafka or
Pub/Sub source would deliver; type them with
:class:`~hybridflow.transforms.ParseRecords`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import time
import typing
from typing import Any, ClassVar, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import InvalidUriError
from hybridflow.metrics import CountElements

__all__ = [
    "SyntheticStream",
    "ReadSynthetic",
    "generate_records",
    "synthetic_stream",
    "duration_field",
    "share_field",
    "unit",
    "index_hash",
    "draw",
    "pick",
    "event_text",
]

DEFAULT_START = "2026-01-01T00:00:00Z"

_MASK = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1)
# salts of the shared imperfections (a stream's own salts start at 11)
_SALT_MAL, _SALT_MALKIND, _SALT_DIS, _SALT_DISAMT, _SALT_LATE = 6, 7, 8, 9, 10


def _mix(x: int) -> int:
    """splitmix64: a fast, well-distributed integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit(seed: int, index: int, salt: int) -> float:
    """A uniform number in [0, 1) that depends only on its arguments."""
    return draw(index_hash(seed, index), salt)


def index_hash(seed: int, index: int) -> int:
    """The part of every draw of record ``index`` that depends only on
    ``(seed, index)``: a record taking several draws hashes it once and takes
    each with :func:`draw`."""
    return _mix(_mix(seed) ^ index)


def draw(hashed: int, salt: int) -> float:
    """``unit(seed, index, salt)`` from ``hashed = index_hash(seed, index)``:
    the same number for one hash instead of three."""
    return _mix(hashed ^ salt) / 18446744073709551616.0


def pick(u: float, weighted: Sequence[tuple[Any, float]]) -> Any:
    """The item of ``weighted`` ``[(item, weight), ...]`` that ``u`` in [0, 1) falls on."""
    total = sum(w for _, w in weighted)
    point = u * total
    for item, weight in weighted:
        point -= weight
        if point < 0:
            return item
    return weighted[-1][0]


def event_text(event_seconds: float) -> str:
    """RFC 3339 text of an event time in epoch seconds, to the millisecond."""
    # Timestamp.to_rfc3339's text, without its time-zone-aware datetime
    micros = Timestamp.of(round(event_seconds, 3)).micros
    return (_EPOCH + datetime.timedelta(microseconds=micros)).isoformat() + "Z"


def duration_field(default: Optional[float] = None) -> Any:
    """A dataclass field of a :class:`SyntheticStream` read from the URI as a
    duration (``90``, ``90s``, ``15m``, ``2h``)."""
    return dataclasses.field(default=default, metadata={"duration": True})


def share_field(default: float) -> Any:
    """A dataclass field of a :class:`SyntheticStream` that is a share of
    records, checked to be between 0 and 1."""
    return dataclasses.field(default=default, metadata={"share": True})


@dataclasses.dataclass(frozen=True)
class SyntheticStream:
    """Configuration of a generator, all values from the URI; subclass it.

    A subclass sets ``stream`` (the name in ``synthetic://NAME``), adds its own
    fields (parameters with realistic defaults) and implements :meth:`record`;
    :meth:`check` may return problems with its own fields.

    Args:
      seed: makes the stream reproducible.
      count: number of records; bounded unless ``rate`` is given without it.
      rate: events per second of event time (and of processing time when
        unbounded).
      duration: seconds an unbounded read runs; ``None`` runs forever.
      start: event time of record 0 (ISO-8601); defaults to 2026-01-01 when
        bounded and to the pipeline start when unbounded.
      malformed, disorder, late: shares of records (0..1).
      max_delay: out-of-order records are up to this many seconds early.
      late_delay: late records are this many seconds (or up to twice that)
        behind.
      bounded: force boundedness; by default bounded iff ``count`` is set and
        ``duration`` is not.
    """

    stream: ClassVar[str] = ""

    seed: int = 42
    count: Optional[int] = None
    rate: float = 10.0
    duration: Optional[float] = duration_field()
    start: Optional[str] = None
    malformed: float = share_field(0.01)
    disorder: float = share_field(0.05)
    max_delay: float = duration_field(30.0)
    late: float = share_field(0.002)
    late_delay: float = duration_field(900.0)
    bounded: Optional[bool] = None

    def __post_init__(self):
        problems = []
        if self.count is not None and self.count < 0:
            problems.append(f"count={self.count} must be >= 0")
        if not self.rate > 0:
            problems.append(f"rate={self.rate} must be > 0")
        if self.duration is not None and not self.duration > 0:
            problems.append(f"duration={self.duration} must be > 0")
        for field in dataclasses.fields(self):
            share = getattr(self, field.name)
            if field.metadata.get("share") and not 0.0 <= share <= 1.0:
                problems.append(f"{field.name}={share} must be a share between 0 and 1")
        if self.start is not None:
            from hybridflow.schemas import to_timestamp

            try:
                to_timestamp(self.start)
            except ValueError:
                problems.append(f"start={self.start!r} must be an ISO-8601 time")
        problems += self.check()
        if problems:
            raise InvalidUriError(f"synthetic://{self.stream}: " + "; ".join(problems))

    def check(self) -> list[str]:
        """Problems with the subclass's own parameters (none by default)."""
        return []

    def record(self, index: int, event_seconds: float, cache: dict) -> str:
        """The JSON text of record ``index`` at ``event_seconds`` (epoch
        seconds before disorder: apply :meth:`displaced`). ``cache`` is a dict
        kept across the records of one call of :func:`generate_records`."""
        raise NotImplementedError(f"{type(self).__name__}.record")

    # -- the imperfections every stream shares ------------------------------
    # Each takes the record's index, or its index_hash(seed, index) as
    # ``hashed`` when the record has it already.
    def displaced(self, index: int, event_seconds: float, *, hashed: Optional[int] = None) -> float:
        """``event_seconds`` moved back for a late or out-of-order record."""
        h = index_hash(self.seed, index) if hashed is None else hashed
        if draw(h, _SALT_LATE) < self.late:
            return event_seconds - self.late_delay * (1.0 + draw(h, _SALT_DISAMT))
        if draw(h, _SALT_DIS) < self.disorder:
            return event_seconds - self.max_delay * draw(h, _SALT_DISAMT)
        return event_seconds

    def malformation(self, index: int, kinds: int, *, hashed: Optional[int] = None) -> Optional[int]:
        """Which of ``kinds`` malformations record ``index`` gets, or None."""
        h = index_hash(self.seed, index) if hashed is None else hashed
        if draw(h, _SALT_MAL) < self.malformed:
            return int(draw(h, _SALT_MALKIND) * kinds)
        return None

    def malformed_text(
        self, index: int, record: dict, missing: str, bad: Sequence[tuple[str, Any]], *,
        hashed: Optional[int] = None,
    ) -> str:
        """The JSON text of ``record``, malformed for a share of records: cut
        short, without the field ``missing``, or with one of ``bad``'s
        ``(field, bad value)`` pairs instead of the real value."""
        kind = self.malformation(index, 2 + len(bad), hashed=hashed)
        if kind is None:
            return json.dumps(record)
        if kind == 0:
            return json.dumps(record)[:-7]  # truncated JSON
        record = dict(record)
        if kind == 1:
            del record[missing]
        else:
            field, value = bad[kind - 2]
            record[field] = value
        return json.dumps(record)

    # -- URI parameters -------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "SyntheticStream":
        """Builds a config from URI query parameters (all strings)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, raw in params.items():
            if name not in fields:
                raise InvalidUriError(
                    f"synthetic://{cls.stream}: unknown parameter {name!r}; known: {', '.join(sorted(fields))}"
                )
            kind = hints[name]
            if typing.get_origin(kind) is typing.Union:
                kind = next(a for a in typing.get_args(kind) if a is not type(None))
            try:
                if fields[name].metadata.get("duration"):
                    kwargs[name] = parse_duration(raw)
                elif kind is bool:
                    kwargs[name] = raw.lower() in ("1", "true", "yes")
                elif kind in (int, float, str):
                    kwargs[name] = kind(raw)
                else:  # pragma: no cover - a subclass with another field type
                    raise ValueError(f"parameters of type {kind!r} are not supported")
            except ValueError as exc:
                raise InvalidUriError(f"synthetic://{cls.stream}: {name}={raw!r} is not a valid value") from exc
        return cls(**kwargs)

    @property
    def is_bounded(self) -> bool:
        if self.bounded is not None:
            return self.bounded
        return self.count is not None and self.duration is None

    @property
    def record_count(self) -> Optional[int]:
        """How many records the stream has: ``count``, else the records whose
        event time ``start + i / rate`` falls before ``start + duration``
        (``None``: endless)."""
        if self.count is not None:
            return self.count
        if self.duration is None:
            return None
        return math.ceil(self.rate * self.duration - 1e-9)

    def start_timestamp(self) -> Timestamp:
        from hybridflow.schemas import to_timestamp

        return to_timestamp(self.start or DEFAULT_START)


_STREAMS: dict[str, type] = {}


def synthetic_stream(name: str) -> type:
    """The :class:`SyntheticStream` subclass serving ``synthetic://name``: a
    stream of a registered or installed pipeline (``PipelineSpec.generators``)."""
    from hybridflow.pipelines import list_pipelines

    if name not in _STREAMS:
        for spec in list_pipelines():
            for stream in spec.generators:
                _STREAMS.setdefault(stream.stream, stream)
    try:
        return _STREAMS[name]
    except KeyError:
        known = ", ".join(f"synthetic://{n}" for n in sorted(_STREAMS)) or "none"
        raise InvalidUriError(f"synthetic://{name}: unknown generator; the installed pipelines have {known}") from None


def generate_records(
    config: SyntheticStream,
    start_index: int,
    stop_index: int,
    start_seconds: Optional[float] = None,
) -> Iterator[str]:
    """Yields the JSON text of records ``start_index .. stop_index - 1``.

    ``start_seconds`` is the event time (epoch seconds) of record 0; by default
    the config's ``start``.
    """
    if start_seconds is None:
        start_seconds = float(config.start_timestamp().micros) / 1e6
    cache: dict = {}
    for i in range(start_index, stop_index):
        yield config.record(i, start_seconds + i / config.rate, cache)


class _GenerateChunk(beam.DoFn):
    """Generates one chunk ``(first, last)`` of a bounded read."""

    def __init__(self, config: SyntheticStream):
        self._config = config

    def process(self, chunk):
        first, last = chunk
        yield from generate_records(self._config, first, last)


class _GenerateTick(beam.DoFn):
    """Generates the records of one PeriodicImpulse tick of an unbounded read."""

    def __init__(self, config: SyntheticStream, start_seconds: float, per_tick: int):
        self._config = config
        self._start = start_seconds
        self._per_tick = per_tick

    def process(self, tick_ts):
        tick = round((float(tick_ts) - self._start) * self._config.rate / self._per_tick)
        first = tick * self._per_tick
        last = first + self._per_tick
        limit = self._config.record_count
        if limit is not None:  # the last tick may reach past the end
            last = min(last, limit)
        yield from generate_records(self._config, first, last, self._start)


class ReadSynthetic(beam.PTransform):
    """Reads a generated stream as JSON text; bounded or unbounded.

    Args:
      config: a :class:`SyntheticStream` (a subclass instance).
      chunk_size: records per generated bundle when bounded.

    Example::

        from hybridflow.pipelines.fraud import SyntheticTransactions

        with beam.Pipeline() as p:
            lines = p | ReadSynthetic(SyntheticTransactions(count=100))
    """

    def __init__(self, config: SyntheticStream, *, chunk_size: int = 5000):
        super().__init__()
        self._config = config
        self._chunk_size = chunk_size

    def default_label(self) -> str:
        return f"ReadSynthetic{type(self._config).__name__.removeprefix('Synthetic')}"

    def expand(self, pbegin):
        cfg = self._config
        if cfg.is_bounded:
            count = cfg.record_count or 0
            chunks = [(first, min(first + self._chunk_size, count)) for first in range(0, count, self._chunk_size)]
            return (
                pbegin
                | "Chunks" >> beam.Create(chunks, reshuffle=True)
                | "Generate" >> beam.ParDo(_GenerateChunk(cfg))
                | "CountRead" >> CountElements("records_read")
            )
        start = float(cfg.start_timestamp().micros) / 1e6 if cfg.start else float(int(time.time()))
        # At least one record per tick, at most 10 ticks a second.
        interval = max(1.0 / cfg.rate, 0.1)
        per_tick = max(1, round(cfg.rate * interval))
        interval = per_tick / cfg.rate
        duration = cfg.duration
        if duration is None and cfg.count is not None:
            duration = cfg.count / cfg.rate
        # "forever" is a century: PeriodicImpulse needs a finite stop.
        stop = start + (duration if duration is not None else 100 * 365 * 86400.0)
        return (
            pbegin
            | "Ticks" >> PeriodicImpulse(start_timestamp=start, stop_timestamp=stop, fire_interval=interval)
            | "Generate" >> beam.ParDo(_GenerateTick(cfg, start, per_tick))
            | "CountRead" >> CountElements("records_read")
        )
