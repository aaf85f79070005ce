"""The supply_chain pipeline's synthetic inputs: a network of warehouses and
the trucks replenishing them, as three deterministic streams.

- ``synthetic://truck-pings``: telemetry of ``shipments`` trucks, all leaving
  at the stream's ``start``, each pinging in turn (record ``i`` is shipment
  ``i % shipments``) its distance left and its speed; a share ``delayed``
  of them slows down to 20-40 % of its speed ``delay_after`` seconds in
  (congestion, a breakdown); a truck that has arrived pings distance 0 and
  speed 0 from its dock.
- ``synthetic://shipment-plans``: one plan per shipment (its destination
  item-location, quantity and planned ETA: the trip at the planned speed plus
  15 % slack), always bounded, ``count`` ignored.
- ``synthetic://stock-snapshots``: ``days`` daily stock snapshots of every
  item-location up to the trucks' start, always bounded, ``count`` ignored:
  each item sells a steady daily demand and is replenished every 5-10 days,
  so on the last day some items are nearly out of stock.

The three take the same network parameters (``population``, ``warehouses``,
``skus``, ``shipments``, ``distance``, ``delayed``, ``delay_after``,
``days``), so ``hybridflow generate supply_chain --params ...`` describes one
network in all of them; with the same ``start``, plans and pings agree.
On top: the disorder, lateness and malformed records every synthetic stream
has (:class:`~hybridflow.io.synthetic.SyntheticStream`).
"""

from __future__ import annotations

import dataclasses
import math

from hybridflow.io.synthetic import (
    SyntheticStream, draw, duration_field, event_text, index_hash, share_field, unit
)

__all__ = ["Network", "Shipment", "Item", "SyntheticTruckPings", "SyntheticShipmentPlans", "SyntheticStockSnapshots"]

_WAREHOUSES = ("wh-north", "wh-south", "wh-east", "wh-west", "wh-central", "wh-coast")
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_SLACK = 1.15  # planned trip time = distance / planned speed * slack
_DAY = 86400.0
# salts: per item, per shipment, per record
_SALT_DEMAND, _SALT_CYCLE, _SALT_PHASE = 101, 102, 103
_SALT_DIST, _SALT_SPEED, _SALT_QTY, _SALT_SLOW = 111, 112, 113, 114
_SALT_NOISE1, _SALT_NOISE2, _SALT_STOCK, _SALT_SOLD = 11, 12, 13, 14


@dataclasses.dataclass(frozen=True)
class Item:
    """One item-location: a SKU in a warehouse, its demand and replenishment cycle."""

    location_sku: str
    warehouse: str
    sku: str
    daily_demand: float  # mean units a day
    cycle_days: int  # replenished every this many days
    phase: int


@dataclasses.dataclass(frozen=True)
class Shipment:
    """One truck's trip to an item-location."""

    shipment_id: str
    truck_id: str
    item: Item
    quantity: int
    distance_km: float  # at departure
    speed_kmh: float  # its cruising speed
    slowdown: float  # 1.0, or the share of its speed a delayed truck keeps


@dataclasses.dataclass(frozen=True)
class Network(SyntheticStream):
    """The parameters the three streams share (see the module docstring).

    Args:
      population: seed of the network (items, shipments); the same in
        history and live streams whatever their ``seed``.
      warehouses: number of warehouses (up to 6).
      skus: SKUs per warehouse.
      shipments: trucks under way, round robin over the item-locations.
      distance: mean trip length, km (trips are 0.5-1.5 times it).
      delayed: share of the trucks that slow down.
      delay_after: seconds after departure when they slow down.
      days: days of stock snapshots.
      (and the parameters of every stream: see SyntheticStream)
    """

    population: int = 42
    warehouses: int = 3
    skus: int = 8
    shipments: int = 24
    distance: float = 300.0
    delayed: float = share_field(0.15)
    delay_after: float = duration_field(1800.0)
    days: int = 28

    def check(self) -> list[str]:
        problems = []
        if not 1 <= self.warehouses <= len(_WAREHOUSES):
            problems.append(f"warehouses={self.warehouses} must be 1-{len(_WAREHOUSES)}")
        for name in ("skus", "shipments", "days"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 < self.distance < 5000:
            problems.append(f"distance={self.distance} must be between 0 and 5000 km")
        return problems

    @property
    def items(self) -> int:
        return self.warehouses * self.skus

    def item(self, j: int) -> Item:
        """Item-location ``j`` (0 .. items - 1)."""
        p = self.population
        warehouse, sku = _WAREHOUSES[j // self.skus], f"sku-{j % self.skus:04d}"
        cycle = 5 + int(6 * unit(p, j, _SALT_CYCLE))
        return Item(
            location_sku=f"{warehouse}/{sku}", warehouse=warehouse, sku=sku,
            daily_demand=round(20.0 + 80.0 * unit(p, j, _SALT_DEMAND), 1),
            cycle_days=cycle, phase=int(unit(p, j, _SALT_PHASE) * cycle),
        )

    def shipment(self, k: int) -> Shipment:
        """Shipment ``k`` (0 .. shipments - 1), bound for item ``k % items``."""
        p = self.population
        item = self.item(k % self.items)
        # a low-discrepancy sequence: the share of delayed trucks is ``delayed`` in a small fleet too
        late = ((k + 1) * _GOLDEN) % 1.0 < self.delayed
        return Shipment(
            shipment_id=f"shp-{k:05d}", truck_id=f"truck-{k:04d}", item=item,
            quantity=int(round(item.daily_demand * (1.0 + 2.0 * unit(p, k, _SALT_QTY)))),
            distance_km=round(self.distance * (0.5 + unit(p, k, _SALT_DIST)), 1),
            speed_kmh=round(65.0 + 20.0 * unit(p, k, _SALT_SPEED), 1),
            slowdown=round(0.2 + 0.2 * unit(p, k, _SALT_SLOW), 3) if late else 1.0,
        )

    def planned_trip_seconds(self, s: Shipment) -> float:
        return s.distance_km / s.speed_kmh * 3600.0 * _SLACK

    def distance_left(self, s: Shipment, seconds: float) -> float:
        """km left ``seconds`` after departure (before the sensor's rounding)."""
        if s.slowdown == 1.0 or seconds <= self.delay_after:
            travelled = s.speed_kmh * seconds / 3600.0
        else:
            travelled = s.speed_kmh * (self.delay_after + s.slowdown * (seconds - self.delay_after)) / 3600.0
        return max(0.0, s.distance_km - travelled)

    def start_seconds(self) -> float:
        return self.start_timestamp().micros / 1e6


@dataclasses.dataclass(frozen=True)
class SyntheticTruckPings(Network):
    """``synthetic://truck-pings``: truck telemetry (see the module docstring)."""

    stream = "truck-pings"

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        h = index_hash(self.seed, i)
        k = i % self.shipments
        s = cache.get(k)
        if s is None:
            s = cache[k] = self.shipment(k)
        seconds = i / self.rate
        left = self.distance_left(s, seconds)
        if left > 0:
            slowed = s.slowdown if seconds > self.delay_after else 1.0
            # GPS speed: the truck's speed with 4 % noise (Box-Muller)
            radius = math.sqrt(-2.0 * math.log(max(draw(h, _SALT_NOISE1), 1e-12)))
            noise = radius * math.cos(2 * math.pi * draw(h, _SALT_NOISE2))
            speed = max(1.0, s.speed_kmh * slowed * (1.0 + 0.04 * noise))
        else:
            speed = 0.0
        record = {
            "ping_id": f"p{self.seed}-{i:010d}",
            "shipment_id": s.shipment_id,
            "truck_id": s.truck_id,
            "distance_km": round(left, 3),
            "speed_kmh": round(speed, 1),
            "event_time": event_text(self.displaced(i, event_seconds, hashed=h)),
        }
        bad = [("speed_kmh", "fast"), ("distance_km", -5.0), ("event_time", "yesterday")]
        return self.malformed_text(i, record, missing="shipment_id", bad=bad, hashed=h)


class _Table:
    """A bounded stream whose size is fixed by the network, not by ``count``."""

    @property
    def is_bounded(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class SyntheticShipmentPlans(_Table, Network):
    """``synthetic://shipment-plans``: one plan per shipment (``count`` is ignored)."""

    stream = "shipment-plans"

    @property
    def record_count(self) -> int:
        return self.shipments

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        s = self.shipment(i)
        departure = self.start_seconds()
        record = {
            "shipment_id": s.shipment_id,
            "truck_id": s.truck_id,
            "warehouse": s.item.warehouse,
            "sku": s.item.sku,
            "location_sku": s.item.location_sku,
            "quantity": s.quantity,
            "departure": event_text(departure),
            "planned_eta": event_text(departure + self.planned_trip_seconds(s)),
        }
        bad = [("quantity", 0), ("planned_eta", "tomorrow")]
        return self.malformed_text(i, record, missing="location_sku", bad=bad)


@dataclasses.dataclass(frozen=True)
class SyntheticStockSnapshots(_Table, Network):
    """``synthetic://stock-snapshots``: ``days`` end-of-day snapshots of every
    item-location, the last one half an hour before the trucks' start
    (``count`` and ``rate`` are ignored; no disorder)."""

    stream = "stock-snapshots"

    @property
    def record_count(self) -> int:
        return self.days * self.items

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        h = index_hash(self.seed, i)
        day, j = divmod(i, self.items)
        item = cache.get(j)
        if item is None:
            item = cache[j] = self.item(j)
        mu = item.daily_demand
        # a saw tooth: full after each delivery, down by about a day's demand every day
        step = (day + item.phase) % item.cycle_days
        on_hand = max(0, round(mu * (item.cycle_days - 1 - step) + mu * 0.4 * (draw(h, _SALT_STOCK) - 0.5)))
        close = self.start_seconds() - 1800.0 - (self.days - 1 - day) * _DAY
        record = {
            "snapshot_id": f"s{self.seed}-{i:08d}",
            "warehouse": item.warehouse,
            "sku": item.sku,
            "location_sku": item.location_sku,
            "on_hand": on_hand,
            "demand": max(0, round(mu * (0.75 + 0.5 * draw(h, _SALT_SOLD)))),
            "event_time": event_text(close),
        }
        bad = [("on_hand", "lots"), ("demand", -3)]
        return self.malformed_text(i, record, missing="location_sku", bad=bad, hashed=h)
