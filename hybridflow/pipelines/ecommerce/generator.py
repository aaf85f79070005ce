"""``synthetic://shop``: a deterministic stream of a shop's clickstream and orders.

A catalogue of ``products`` (its prices, popularity, stock capacity and how
fast each sells down during a day: functions of ``population``), and
``shoppers`` concurrent sessions, each of six events of one user (drawn from
``users``) about one product: ``view``, ``view``, then ``add_to_cart`` for
the users who fill a cart, ``view``, then ``checkout`` and ``order`` for the
ones who buy (the rest browse on). Record ``i`` is step ``(i // shoppers) %
6`` of the session on lane ``i % shoppers``, so a session's events are
``shoppers / rate`` seconds apart.

Demand follows the time of day: the share of sessions that buy peaks at 20:00
and is lowest at 08:00 (15-40 %); a quarter of the sessions leaves a cart
behind. Products are picked by popularity (Zipf-like). With ``surge`` > 1,
the sessions started ``surge_after`` seconds or more into the stream pick
product ``promoted`` ``surge`` times as often, and its stock runs down
faster. An order reports the stock left: each product is restocked to its
capacity every ``restock`` (at midnight UTC by default) and sells down in
between. On top: the
disorder, lateness and malformed records every synthetic stream has
(:class:`~hybridflow.io.synthetic.SyntheticStream`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from hybridflow.io.synthetic import SyntheticStream, draw, duration_field, event_text, index_hash, share_field, unit

__all__ = ["SyntheticShop", "Product", "SESSION_STEPS"]

#: the events of a session, per intent: what step t of a session is
SESSION_STEPS = {
    "browse": ("view", "view", "view", "view", "view", "view"),
    "abandon": ("view", "view", "add_to_cart", "view", "view", "view"),
    "buy": ("view", "view", "add_to_cart", "view", "checkout", "order"),
}
_STEPS = 6
_ABANDON_SHARE = 0.25
_MEAN_UNITS = 2.0  # 1-3 units per cart and order
_CATEGORIES = ("books", "toys", "garden", "kitchen", "sports", "electronics")
# salts of the catalogue (per product), of each session (per session key) and of each record (per index)
_SALT_PRICE, _SALT_POP, _SALT_CAP, _SALT_DEPL, _SALT_CAT = 101, 102, 103, 104, 105
_SALT_USER, _SALT_INTENT, _SALT_PRODUCT, _SALT_UNITS, _SALT_SESSION = 11, 12, 13, 14, 15


def buy_share(hour: float) -> float:
    """The share of sessions starting at ``hour`` (UTC, fractional) that buy: 15-40 %, peak at 20:00."""
    return 0.15 + 0.25 * (1.0 + math.cos(2.0 * math.pi * (hour - 20.0) / 24.0)) / 2.0


@dataclasses.dataclass(frozen=True)
class Product:
    """One product of the catalogue."""

    product_id: str
    category: str
    price: float
    popularity: float  # relative weight of the product in the sessions
    capacity_days: float  # stock after a restock, in restock periods of the product's average demand (0.8-1.4)
    depletion: float  # share of the capacity sold down by the end of a restock period (0.6-1.0)


def product(population: int, k: int) -> Product:
    """Product ``k`` of the catalogue of ``population``."""
    return Product(
        product_id=f"p{k:03d}",
        category=_CATEGORIES[int(unit(population, k, _SALT_CAT) * len(_CATEGORIES))],
        price=round(5.0 + 195.0 * unit(population, k, _SALT_PRICE) ** 2, 2),
        popularity=(1.0 + 0.5 * unit(population, k, _SALT_POP)) / (k + 1) ** 0.8,
        capacity_days=round(0.8 + 0.6 * unit(population, k, _SALT_CAP), 3),
        depletion=round(0.6 + 0.4 * unit(population, k, _SALT_DEPL), 3),
    )


@dataclasses.dataclass(frozen=True)
class SyntheticShop(SyntheticStream):
    """``synthetic://shop``: clickstream and order events of a shop.

    Args:
      population: seed of the catalogue (prices, popularity, stock);
        defaults to ``seed``. Two streams with different seeds and the same
        population sell the same products (history vs live).
      products: size of the catalogue.
      users: how many users the sessions are drawn from.
      shoppers: concurrent sessions (lanes); a session's events are
        ``shoppers / rate`` seconds apart.
      promoted: the product (index) a surge of demand goes to.
      surge: how many times as often sessions pick the promoted product once
        the surge starts (1: no surge).
      surge_after: seconds of event time after the stream's start before the surge.
      abandon: share of the sessions that leave a cart behind.
      restock: every product is restocked to its capacity every ``restock``
        seconds of event time (a day by default: at midnight UTC) and sells
        down in between; its capacity is ``capacity_days`` of its average
        demand over such a period.
      (and the parameters of every stream: see SyntheticStream)
    """

    stream = "shop"

    products: int = 12
    users: int = 2000
    shoppers: int = 20
    promoted: int = 2
    surge: float = 1.0
    surge_after: float = duration_field(3600.0)
    abandon: float = share_field(_ABANDON_SHARE)
    restock: float = duration_field(86400.0)
    population: Optional[int] = None

    def check(self) -> list[str]:
        problems = [f"{name}={getattr(self, name)} must be >= 1" for name in ("products", "users", "shoppers")
                    if getattr(self, name) < 1]
        if not self.restock > 0:
            problems.append(f"restock={self.restock} must be > 0 seconds")
        if not 0 <= self.promoted < max(self.products, 1):
            problems.append(f"promoted={self.promoted} must be a product index, 0 to products-1")
        if not self.surge >= 1:
            problems.append(f"surge={self.surge} must be >= 1 (a multiple of the promoted product's demand)")
        return problems

    def catalogue(self) -> list[Product]:
        """The products of this stream's catalogue."""
        population = self.seed if self.population is None else self.population
        return [product(population, k) for k in range(self.products)]

    def daily_units(self, cache: Optional[dict] = None) -> list[float]:
        """The average units ordered per day of each product at this stream's
        rate, before any surge: what its stock capacity is sized by."""
        products = self.catalogue() if cache is None else cache["products"]
        total = sum(p.popularity for p in products)
        mean_buy = 0.275  # the mean of buy_share over a day
        sessions_per_day = self.rate * 86400.0 / _STEPS
        return [sessions_per_day * mean_buy * _MEAN_UNITS * p.popularity / total for p in products]

    def _tables(self, cache: dict) -> dict:
        if "products" not in cache:
            cache["products"] = self.catalogue()
            cache["daily"] = self.daily_units(cache)
            cache["weights"] = [(k, p.popularity) for k, p in enumerate(cache["products"])]
        return cache

    def session(self, i: int, event_seconds: float, cache: dict) -> tuple[str, int, str, int]:
        """(user, product index, intent, step) of record ``i``'s session."""
        lanes = self.shoppers
        lane, j = i % lanes, i // lanes
        number, step = divmod(j, _STEPS)
        key = index_hash(self.seed ^ _SALT_SESSION, number * lanes + lane)
        started = event_seconds - step * lanes / self.rate  # the event time of the session's first event
        since_start = (number * _STEPS * lanes + lane) / self.rate
        weights = cache["weights"]
        if self.surge > 1 and since_start >= self.surge_after:
            weights = [(k, w * self.surge if k == self.promoted else w) for k, w in weights]
        total = sum(w for _, w in weights)
        point = draw(key, _SALT_PRODUCT) * total
        k = weights[-1][0]
        for candidate, weight in weights:
            point -= weight
            if point < 0:
                k = candidate
                break
        u = draw(key, _SALT_INTENT)
        buying = buy_share((started % 86400.0) / 3600.0)
        intent = "buy" if u < buying else "abandon" if u < buying + self.abandon else "browse"
        user = f"u{int(draw(key, _SALT_USER) * self.users):05d}"
        return user, k, intent, step

    def stock(self, k: int, event_seconds: float, cache: dict) -> int:
        """Units of product ``k`` left at ``event_seconds``: restocked to its
        capacity every ``restock`` seconds, sold down in between (faster in a surge)."""
        p = cache["products"][k]
        per_period = cache["daily"][k] * self.restock / 86400.0
        period_share = (event_seconds % self.restock) / self.restock
        left = per_period * p.capacity_days * (1.0 - p.depletion * period_share)
        surging = event_seconds - cache["start"] - self.surge_after
        if k == self.promoted and self.surge > 1 and surging >= 0:
            # the extra demand of the surge, since the surge or the last restock, whichever is later
            left -= per_period * (self.surge - 1.0) * min(surging % self.restock if surging >= self.restock
                                                          else surging, event_seconds % self.restock) / self.restock
        return max(0, int(left))

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        self._tables(cache)
        cache.setdefault("start", event_seconds - i / self.rate)
        h = index_hash(self.seed, i)
        user, k, intent, step = self.session(i, event_seconds, cache)
        p = cache["products"][k]
        event_type = SESSION_STEPS[intent][step]
        units = 1 + int(draw(index_hash(self.seed ^ _SALT_SESSION, i // (self.shoppers * _STEPS) * self.shoppers
                                        + i % self.shoppers), _SALT_UNITS) * 3)
        record = {
            "event_id": f"e{self.seed}-{i:010d}",
            "user_id": user,
            "product_id": p.product_id,
            "event_type": event_type,
            "quantity": units if event_type in ("add_to_cart", "order") else 1,
            "price": p.price,
            "stock": self.stock(k, event_seconds, cache) if event_type == "order" else None,
            "event_time": event_text(self.displaced(i, event_seconds, hashed=h)),
        }
        bad = [("event_type", "teleport"), ("quantity", 0), ("event_time", "yesterday")]
        return self.malformed_text(i, record, missing="user_id", bad=bad, hashed=h)
