"""Record types of the fraud pipeline: transactions and card profiles.

``transactions([("c1", 10.0, 5), ...])`` builds :class:`Transaction` records
for tests from ``(card, amount, seconds after start[, country])`` tuples.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

from typing import Any, Iterable, NamedTuple, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import Pattern, Range, register, to_timestamp

__all__ = ["Transaction", "CardProfile", "transactions"]


@register
class Transaction(NamedTuple):
    """A card transaction, the input of the fraud pipeline."""

    txn_id: str
    card_id: str
    customer_id: str
    merchant_id: str
    category: str
    amount: float
    currency: str
    country: str
    event_time: Timestamp

    constraints = {
        "txn_id": Pattern(r"\S{1,128}"),
        "card_id": Pattern(r"\S{1,64}"),
        "amount": Range(min=0.0, max=1_000_000.0),
        "currency": Pattern(r"[A-Z]{3}"),
        "country": Pattern(r"[A-Z]{2}"),
    }


@register
class CardProfile(NamedTuple):
    """Spending profile of one card, computed by the batch layer from history."""

    card_id: str
    txn_count: int
    amount_mean: float
    amount_stddev: float
    usual_countries: list[str]
    last_seen: Timestamp


_START = to_timestamp("2026-01-01T00:00:00Z")


def transactions(
    rows: Iterable[Sequence[Any]],
    start: Timestamp = _START,
    country: str = "US",
    currency: str = "USD",
) -> list[Transaction]:
    """Transactions from ``(card, amount, seconds[, country])`` tuples.

    Ids are ``t0``, ``t1``, ... in order; customer, merchant and category are
    fixed so tests only spell out what matters.
    """
    out = []
    for i, row in enumerate(rows):
        card, amount, seconds = row[0], row[1], row[2]
        txn_country = row[3] if len(row) > 3 else country
        out.append(
            Transaction(
                txn_id=f"t{i}",
                card_id=card,
                customer_id=f"cust-{card}",
                merchant_id="m-1",
                category="grocery",
                amount=float(amount),
                currency=currency,
                country=txn_country,
                event_time=start + seconds,
            )
        )
    return out
