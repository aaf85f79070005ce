"""``synthetic://transactions``: a deterministic stream of realistic card transactions.

A card population with home countries and spending levels, category-dependent
amounts, occasional travel, and fraud (``fraud``: very large amounts abroad,
and bursts of small online transactions on one card), on top of the disorder,
lateness and malformed records every synthetic stream has
(:class:`~hybridflow.io.synthetic.SyntheticStream`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from hybridflow.io.synthetic import (
    ReadSynthetic, SyntheticStream, draw, event_text, index_hash, share_field, unit
)

__all__ = ["SyntheticTransactions", "ReadSyntheticTransactions"]

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
_SALT_FRAUD, _SALT_FRAUDKIND, _SALT_FRAUDAMT, _SALT_ABROAD, _SALT_TRAVEL = 11, 12, 13, 14, 15
_BURST_LENGTH = 12


def _card(seed: int, k: int) -> tuple[str, str, str, float]:
    """(card_id, customer_id, home country, spending scale) of card ``k``."""
    u = unit(seed, k, 101)
    point = u * _HOME_TOTAL
    home = next(c for cum, c in _HOME_CDF if point < cum)
    scale = math.exp((unit(seed, k, 102) - 0.5) * 1.2)  # 0.55x .. 1.8x
    return f"card-{k:06d}", f"cust-{k // 2 + 17:06d}", home, scale


@dataclasses.dataclass(frozen=True)
class SyntheticTransactions(SyntheticStream):
    """``synthetic://transactions``: card transactions.

    Args:
      population: seed of the card population (home countries, spending
        levels); defaults to ``seed``. Two streams with different seeds and
        the same population describe the same cards (history vs live).
      cards: size of the card population.
      fraud: share of fraudulent records (half very large purchases abroad,
        half the first records of bursts of 12 small online purchases).
      (and the parameters of every stream: see SyntheticStream)
    """

    stream = "transactions"

    cards: int = 5000
    fraud: float = share_field(0.002)
    population: Optional[int] = None

    def check(self) -> list[str]:
        return [f"cards={self.cards} must be >= 1"] if self.cards < 1 else []

    def _starts_burst(self, hashed: int) -> bool:
        """Whether the record of ``hashed`` (its index_hash) starts a burst."""
        return draw(hashed, _SALT_FRAUD) < self.fraud / 2 and draw(hashed, _SALT_FRAUDKIND) < 0.5

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        seed = self.seed
        h = index_hash(seed, i)

        # A burst ("card testing") takes over the next _BURST_LENGTH records.
        bursts = cache.get("bursts")
        if bursts is None:
            bursts = cache["bursts"] = _Bursts(self)
        burst_from = bursts.latest(i, h)
        k = int(draw(h if burst_from is None else index_hash(seed, burst_from), _SALT_CARD) * self.cards)
        card = cache.get(k)
        if card is None:
            card = cache[k] = _card(self.population if self.population is not None else seed, k)
        card_id, customer_id, home, scale = card

        point = draw(h, _SALT_CAT) * _CAT_TOTAL
        _, category, median = next(row for row in _CAT_CDF if point < row[0])
        # log-normal amount around the category median, scaled per card
        u1 = max(draw(h, _SALT_AMT1), 1e-12)
        u2 = draw(h, _SALT_AMT2)
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
        amount = median * scale * math.exp(0.45 * z)
        country = home
        if draw(h, _SALT_TRAVEL) < 0.003:  # ordinary travel
            country = _COUNTRIES[int(draw(h, _SALT_ABROAD) * len(_COUNTRIES))][0]

        if burst_from is not None:
            category, amount = "online", 1.0 + 9.0 * draw(h, _SALT_FRAUDAMT)
        elif draw(h, _SALT_FRAUD) < self.fraud:  # a very large purchase abroad
            category = "electronics"
            amount = median * scale * (15.0 + 30.0 * draw(h, _SALT_FRAUDAMT))
            abroad = [c for c, _, _ in _COUNTRIES if c != home]
            country = abroad[int(draw(h, _SALT_ABROAD) * len(abroad))]

        record = {
            "txn_id": f"t{seed}-{i:010d}",
            "card_id": card_id,
            "customer_id": customer_id,
            "merchant_id": f"m-{int(draw(h, _SALT_MERCH) * 2000):05d}",
            "category": category,
            "amount": round(amount, 2),
            "currency": _CURRENCY[country],
            "country": country,
            "event_time": event_text(self.displaced(i, event_seconds, hashed=h)),
        }
        amount = record["amount"]
        bad = [("amount", -amount), ("currency", "EURO"), ("event_time", "yesterday"),
               ("amount", f"{amount:.2f}".replace(".", ","))]
        return self.malformed_text(i, record, missing="card_id", bad=bad, hashed=h)


class _Bursts:
    """The latest burst start, kept across the records of one call of
    generate_records: records asked for in order cost no extra hash."""

    def __init__(self, stream: SyntheticTransactions):
        self._stream = stream
        self._next: Optional[int] = None  # the index after the last record asked for
        self._last: Optional[int] = None  # the latest index that started a burst

    def latest(self, i: int, hashed: int) -> Optional[int]:
        """The latest index of the last ``_BURST_LENGTH`` (``i`` included) that
        starts a burst, or None; ``hashed`` is record ``i``'s index_hash."""
        stream = self._stream
        if i != self._next:  # first record, or out of order: look back over a whole burst
            self._last = None
            for j in range(max(0, i - _BURST_LENGTH + 1), i):
                if stream._starts_burst(index_hash(stream.seed, j)):
                    self._last = j
        if stream._starts_burst(hashed):
            self._last = i
        self._next = i + 1
        last = self._last
        return last if last is not None and i - last < _BURST_LENGTH else None


class ReadSyntheticTransactions(ReadSynthetic):
    """:class:`~hybridflow.io.synthetic.ReadSynthetic` of ``synthetic://transactions``:
    a :class:`SyntheticTransactions`, or its fields as keyword arguments
    (``ReadSyntheticTransactions(count=100, seed=7)``)."""

    def __init__(self, config: Optional[SyntheticTransactions] = None, *, chunk_size: int = 5000, **fields):
        if config is None:
            config = SyntheticTransactions(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        super().__init__(config, chunk_size=chunk_size)
