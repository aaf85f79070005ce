"""Record type of the ecommerce pipeline: one event of a shop's event bus.

The clickstream (``view``, ``add_to_cart``, ``checkout``) and the orders
(``order``: units bought and the stock the order service reports left) come
on one stream, in the order a shop's event bus delivers them.

``shop_events([("u1", "p1", "view", 5), ("u1", "p1", "order", 60, 2, 40)])``
builds :class:`ShopEvent` records for tests from ``(user, product, type,
seconds after start[, quantity[, stock]])`` tuples.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

from typing import Any, Iterable, NamedTuple, Optional, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import OneOf, Pattern, Range, register, to_timestamp

__all__ = ["ShopEvent", "EVENT_TYPES", "shop_events"]

#: the event types, in the order a session goes through them
EVENT_TYPES = ("view", "add_to_cart", "checkout", "order")


@register
class ShopEvent(NamedTuple):
    """One event of a user in the shop, the input of the ecommerce pipeline."""

    event_id: str
    user_id: str
    product_id: str
    event_type: str  # view, add_to_cart, checkout or order
    quantity: int  # units added to the cart or ordered (1 for a view or checkout)
    price: float  # unit price
    stock: Optional[int]  # order events: units left in stock after the order
    event_time: Timestamp

    constraints = {
        "event_id": Pattern(r"\S{1,128}"),
        "user_id": Pattern(r"\S{1,64}"),
        "product_id": Pattern(r"\S{1,64}"),
        "event_type": OneOf(EVENT_TYPES),
        "quantity": Range(min=1, max=1000),
        "price": Range(min=0.0, max=100_000.0),
        "stock": Range(min=0),
    }


_START = to_timestamp("2026-01-01T00:00:00Z")


def shop_events(rows: Iterable[Sequence[Any]], start: Timestamp = _START, price: float = 10.0) -> list[ShopEvent]:
    """Events from ``(user, product, event type, seconds[, quantity[, stock]])`` tuples.

    Ids are ``e0``, ``e1``, ... in order; the price is fixed so tests only
    spell out what matters.
    """
    return [
        ShopEvent(
            event_id=f"e{i}",
            user_id=row[0],
            product_id=row[1],
            event_type=row[2],
            quantity=int(row[4]) if len(row) > 4 else 1,
            price=price,
            stock=int(row[5]) if len(row) > 5 else None,
            event_time=start + row[3],
        )
        for i, row in enumerate(rows)
    ]
