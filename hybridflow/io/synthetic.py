"""A deterministic generator of realistic card transactions: ``synthetic://``.

``synthetic://transactions?count=10000&seed=7`` is bounded;
``synthetic://transactions?rate=200&duration=60`` is unbounded (a
``PeriodicImpulse`` drives it at ``rate`` events per second of processing time
and stops after ``duration`` seconds, or never).

Every record is a function of ``(seed, index)`` only, so a bounded read, an
unbounded read and :func:`generate_transactions` called from a test produce the
same records for the same indices. Event time of record ``i`` is
``start + i / rate`` plus the configured disorder; unbounded reads without an
explicit ``start`` use the time the pipeline starts.

The stream is realistic enough to exercise a fraud pipeline: a card population
with home countries and spending levels, category-dependent amounts, a share of
out-of-order records (``disorder``, up to ``max_delay`` seconds), of late
records (``late``, ``late_delay`` seconds behind), of malformed records
(``malformed``: broken JSON, missing fields, bad values) and of fraud
(``fraud``: very large amounts abroad, bursts of transactions on one card).

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
from typing import Iterator, Mapping, Optional

import apache_beam as beam
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import InvalidUriError
from hybridflow.metrics import CountElements

__all__ = ["SyntheticTransactions", "ReadSyntheticTransactions", "generate_transactions"]

DEFAULT_START = "2026-01-01T00:00:00Z"

_MASK = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1)

_COUNTRIES = [
    # country, currency, weight as a home country
    ("US", "USD", 30), ("GB", "GBP", 10), ("DE", "EUR", 10), ("FR", "EUR", 8),
    ("ES", "EUR", 6), ("IT", "EUR", 6), ("NL", "EUR", 4), ("CA", "CAD", 6),
    ("BR", "BRL", 5), ("JP", "JPY", 5), ("IN", "INR", 5), ("AU", "AUD", 5),
]
_CURRENCY = {c: cur for c, cur, _ in _COUNTRIES}
_HOME_CDF = []
_acc = 0
for _c, _cur, _w in _COUNTRIES:
    _acc += _w
    _HOME_CDF.append((_acc, _c))
_HOME_TOTAL = _acc

_CATEGORIES = [
    # category, median amount, weight
    ("grocery", 45.0, 30), ("fuel", 55.0, 12), ("restaurant", 35.0, 18),
    ("online", 60.0, 15), ("travel", 320.0, 4), ("electronics", 240.0, 5),
    ("pharmacy", 25.0, 8), ("entertainment", 40.0, 8),
]
_CAT_CDF = []
_acc = 0
for _name, _median, _w in _CATEGORIES:
    _acc += _w
    _CAT_CDF.append((_acc, _name, _median))
_CAT_TOTAL = _acc

_SALT_CARD, _SALT_CAT, _SALT_AMT1, _SALT_AMT2, _SALT_MERCH = 1, 2, 3, 4, 5
_SALT_MAL, _SALT_MALKIND, _SALT_DIS, _SALT_DISAMT, _SALT_LATE = 6, 7, 8, 9, 10
_SALT_FRAUD, _SALT_FRAUDKIND, _SALT_FRAUDAMT, _SALT_ABROAD, _SALT_TRAVEL = 11, 12, 13, 14, 15
_BURST_LENGTH = 12


def _mix(x: int) -> int:
    """splitmix64: a fast, well-distributed integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(seed: int, index: int, salt: int) -> float:
    """A uniform number in [0, 1) that depends only on its arguments."""
    return _Draws.unit(_mix(_mix(seed) ^ index), salt)


class _Draws:
    """``_unit(seed, index, salt)`` for one seed, with the part of the hash that
    depends on ``(seed, index)`` computed once per index: the same numbers for
    a third of the work (a record takes up to a dozen draws)."""

    def __init__(self, seed: int):
        self._seed_hash = _mix(seed)

    def index(self, index: int) -> int:
        return _mix(self._seed_hash ^ index)

    @staticmethod
    def unit(index_hash: int, salt: int) -> float:
        return _mix(index_hash ^ salt) / 18446744073709551616.0


@dataclasses.dataclass(frozen=True)
class SyntheticTransactions:
    """Configuration of the transaction generator (all values from the URI).

    Args:
      seed: makes the stream reproducible.
      population: seed of the card population (home countries, spending
        levels); defaults to ``seed``. Two streams with different seeds and
        the same population describe the same cards (history vs live).
      count: number of records; bounded unless ``rate`` is given without it.
      rate: events per second of event time (and of processing time when
        unbounded).
      duration: seconds an unbounded read runs; ``None`` runs forever.
      start: event time of record 0 (ISO-8601); defaults to 2026-01-01 when
        bounded and to the pipeline start when unbounded.
      cards: size of the card population.
      malformed, disorder, late, fraud: shares of records (0..1).
      max_delay: out-of-order records are up to this many seconds early.
      late_delay: late records are this many seconds (or up to twice that)
        behind.
      bounded: force boundedness; by default bounded iff ``count`` is set and
        ``rate`` is not, or ``mode`` says so.
    """

    seed: int = 42
    count: Optional[int] = None
    rate: float = 10.0
    duration: Optional[float] = None
    start: Optional[str] = None
    cards: int = 5000
    malformed: float = 0.01
    disorder: float = 0.05
    max_delay: float = 30.0
    late: float = 0.002
    late_delay: float = 900.0
    fraud: float = 0.002
    bounded: Optional[bool] = None
    population: Optional[int] = None

    def __post_init__(self):
        problems = []
        if self.count is not None and self.count < 0:
            problems.append(f"count={self.count} must be >= 0")
        if not self.rate > 0:
            problems.append(f"rate={self.rate} must be > 0")
        if self.duration is not None and not self.duration > 0:
            problems.append(f"duration={self.duration} must be > 0")
        if self.cards < 1:
            problems.append(f"cards={self.cards} must be >= 1")
        for name in ("malformed", "disorder", "late", "fraud"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                problems.append(f"{name}={share} must be a share between 0 and 1")
        if self.start is not None:
            from hybridflow.schemas import to_timestamp

            try:
                to_timestamp(self.start)
            except ValueError:
                problems.append(f"start={self.start!r} must be an ISO-8601 time")
        if problems:
            raise InvalidUriError("synthetic://transactions: " + "; ".join(problems))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "SyntheticTransactions":
        """Builds a config from URI query parameters (all strings)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for name, raw in params.items():
            if name not in fields:
                raise InvalidUriError(
                    f"synthetic://transactions: unknown parameter {name!r}; "
                    f"known: {', '.join(sorted(fields))}"
                )
            try:
                if name in ("seed", "count", "cards", "population"):
                    kwargs[name] = int(raw)
                elif name == "start":
                    kwargs[name] = raw
                elif name == "bounded":
                    kwargs[name] = raw.lower() in ("1", "true", "yes")
                elif name in ("duration", "max_delay", "late_delay"):
                    kwargs[name] = parse_duration(raw)
                else:
                    kwargs[name] = float(raw)
            except ValueError as exc:
                raise InvalidUriError(
                    f"synthetic://transactions: {name}={raw!r} is not a valid value"
                ) from exc
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


def _card(seed: int, k: int) -> tuple[str, str, str, float]:
    """(card_id, customer_id, home country, spending scale) of card ``k``."""
    u = _unit(seed, k, 101)
    pick = u * _HOME_TOTAL
    home = next(c for cum, c in _HOME_CDF if pick < cum)
    scale = math.exp((_unit(seed, k, 102) - 0.5) * 1.2)  # 0.55x .. 1.8x
    return f"card-{k:06d}", f"cust-{k // 2 + 17:06d}", home, scale


class _Generator:
    """Records of one config, with what neighbouring records share computed
    once: card profiles, the latest burst start, the per-index part of the
    hash (:class:`_Draws`)."""

    def __init__(self, cfg: SyntheticTransactions):
        self.cfg = cfg
        self._population = cfg.population if cfg.population is not None else cfg.seed
        self._draws = _Draws(cfg.seed)
        self._cards: dict = {}
        self._next: Optional[int] = None  # the index after the last record generated
        self._last_burst: Optional[int] = None

    def _starts_burst(self, index_hash: int) -> bool:
        return (_Draws.unit(index_hash, _SALT_FRAUD) < self.cfg.fraud / 2
                and _Draws.unit(index_hash, _SALT_FRAUDKIND) < 0.5)

    def _burst_from(self, i: int, index_hash: int) -> Optional[int]:
        """The latest index of the last ``_BURST_LENGTH`` (``i`` included) that
        starts a burst, or None; no extra hash when called in order."""
        if i != self._next:  # first call, or out of order: look back over the whole burst length
            self._last_burst = None
            for j in range(max(0, i - _BURST_LENGTH + 1), i):
                if self._starts_burst(self._draws.index(j)):
                    self._last_burst = j
        if self._starts_burst(index_hash):
            self._last_burst = i
        self._next = i + 1
        last = self._last_burst
        return last if last is not None and i - last < _BURST_LENGTH else None

    def _card(self, k: int) -> tuple[str, str, str, float]:
        card = self._cards.get(k)
        if card is None:
            card = self._cards[k] = _card(self._population, k)
        return card

    def record(self, i: int, event_seconds: float) -> str:
        """The JSON text of record ``i`` at ``event_seconds`` (before disorder)."""
        cfg = self.cfg
        seed = cfg.seed
        h = self._draws.index(i)
        unit = _Draws.unit

        # A burst ("card testing") takes over the next _BURST_LENGTH records.
        burst_from = self._burst_from(i, h)
        if burst_from is not None:
            k = int(unit(self._draws.index(burst_from), _SALT_CARD) * cfg.cards)
        else:
            k = int(unit(h, _SALT_CARD) * cfg.cards)
        card_id, customer_id, home, scale = self._card(k)

        pick = unit(h, _SALT_CAT) * _CAT_TOTAL
        _, category, median = next(row for row in _CAT_CDF if pick < row[0])
        # log-normal amount around the category median, scaled per card
        u1 = max(unit(h, _SALT_AMT1), 1e-12)
        u2 = unit(h, _SALT_AMT2)
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
        amount = median * scale * math.exp(0.45 * z)
        country = home
        if unit(h, _SALT_TRAVEL) < 0.003:  # ordinary travel
            country = _COUNTRIES[int(unit(h, _SALT_ABROAD) * len(_COUNTRIES))][0]

        is_fraud = unit(h, _SALT_FRAUD) < cfg.fraud
        if burst_from is not None:
            category, amount = "online", 1.0 + 9.0 * unit(h, _SALT_FRAUDAMT)
        elif is_fraud:  # a very large purchase abroad
            category = "electronics"
            amount = median * scale * (15.0 + 30.0 * unit(h, _SALT_FRAUDAMT))
            abroad = [c for c, _, _ in _COUNTRIES if c != home]
            country = abroad[int(unit(h, _SALT_ABROAD) * len(abroad))]

        # event-time disorder
        if unit(h, _SALT_LATE) < cfg.late:
            event_seconds -= cfg.late_delay * (1.0 + unit(h, _SALT_DISAMT))
        elif unit(h, _SALT_DIS) < cfg.disorder:
            event_seconds -= cfg.max_delay * unit(h, _SALT_DISAMT)

        record = {
            "txn_id": f"t{seed}-{i:010d}",
            "card_id": card_id,
            "customer_id": customer_id,
            "merchant_id": f"m-{int(unit(h, _SALT_MERCH) * 2000):05d}",
            "category": category,
            "amount": round(amount, 2),
            "currency": _CURRENCY[country],
            "country": country,
            # Timestamp.to_rfc3339's text, without its time-zone-aware datetime
            "event_time": (_EPOCH + datetime.timedelta(microseconds=Timestamp.of(round(event_seconds, 3)).micros))
            .isoformat() + "Z",
        }
        if unit(h, _SALT_MAL) < cfg.malformed:
            kind = int(unit(h, _SALT_MALKIND) * 6)
            if kind == 0:
                return json.dumps(record)[:-7]  # truncated JSON
            if kind == 1:
                del record["card_id"]
            elif kind == 2:
                record["amount"] = -record["amount"]
            elif kind == 3:
                record["currency"] = "EURO"
            elif kind == 4:
                record["event_time"] = "yesterday"
            else:
                record["amount"] = f"{record['amount']:.2f}".replace(".", ",")
        return json.dumps(record)


def generate_transactions(
    config: SyntheticTransactions,
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
    generator = _Generator(config)
    for i in range(start_index, stop_index):
        yield generator.record(i, start_seconds + i / config.rate)


class _GenerateChunk(beam.DoFn):
    """Generates one chunk ``(first, last)`` of a bounded read."""

    def __init__(self, config: SyntheticTransactions):
        self._config = config

    def process(self, chunk):
        first, last = chunk
        yield from generate_transactions(self._config, first, last)


class _GenerateTick(beam.DoFn):
    """Generates the records of one PeriodicImpulse tick of an unbounded read."""

    def __init__(self, config: SyntheticTransactions, start_seconds: float, per_tick: int):
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
        for text in generate_transactions(self._config, first, last, self._start):
            yield text


class ReadSyntheticTransactions(beam.PTransform):
    """Reads generated transactions as JSON text; bounded or unbounded.

    Args:
      config: a :class:`SyntheticTransactions` (or build one from keyword
        arguments).
      chunk_size: records per generated bundle when bounded.

    Example::

        with beam.Pipeline() as p:
            lines = p | ReadSyntheticTransactions(SyntheticTransactions(count=100))
    """

    def __init__(self, config: Optional[SyntheticTransactions] = None, *, chunk_size: int = 5000, **kwargs):
        super().__init__()
        if config is None:
            config = SyntheticTransactions(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self._config = config
        self._chunk_size = chunk_size

    def expand(self, pbegin):
        cfg = self._config
        if cfg.is_bounded:
            count = cfg.record_count or 0
            chunks = [
                (first, min(first + self._chunk_size, count))
                for first in range(0, count, self._chunk_size)
            ]
            return (
                pbegin
                | "Chunks" >> beam.Create(chunks, reshuffle=True)
                | "Generate" >> beam.ParDo(_GenerateChunk(cfg))
                | "CountRead" >> CountElements("records_read")
            )
        start = (
            float(cfg.start_timestamp().micros) / 1e6 if cfg.start else float(int(time.time()))
        )
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
