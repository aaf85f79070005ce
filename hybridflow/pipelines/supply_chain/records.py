"""Record types of the supply_chain pipeline: truck pings, shipment plans and
warehouse stock snapshots.

A warehouse's stock of one SKU is an *item-location*, keyed by
``location_sku`` (``"wh-north/sku-0003"``), the single key planning systems
use for it; plans and snapshots carry it next to ``warehouse`` and ``sku``.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

from typing import NamedTuple

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import Pattern, Range, register

__all__ = ["TruckPing", "ShipmentPlan", "StockSnapshot"]


@register
class TruckPing(NamedTuple):
    """One telemetry ping of a truck under way: the streaming input."""

    ping_id: str
    shipment_id: str
    truck_id: str
    distance_km: float  # road distance left to the destination warehouse
    speed_kmh: float
    event_time: Timestamp

    constraints = {
        "ping_id": Pattern(r"\S{1,128}"),
        "shipment_id": Pattern(r"\S{1,64}"),
        "truck_id": Pattern(r"\S{1,64}"),
        "distance_km": Range(min=0.0, max=5000.0),
        "speed_kmh": Range(min=0.0, max=160.0),
    }


@register
class ShipmentPlan(NamedTuple):
    """The plan of one shipment (reference data): where it goes, what it
    carries and when it is due."""

    shipment_id: str
    truck_id: str
    warehouse: str
    sku: str
    location_sku: str
    quantity: int
    departure: Timestamp
    planned_eta: Timestamp

    constraints = {
        "shipment_id": Pattern(r"\S{1,64}"),
        "location_sku": Pattern(r"\S{1,128}"),
        "quantity": Range(min=1, max=1_000_000),
    }


@register
class StockSnapshot(NamedTuple):
    """A warehouse's end-of-day stock of one SKU: the batch history."""

    snapshot_id: str
    warehouse: str
    sku: str
    location_sku: str
    on_hand: int  # units in stock at the close of the day
    demand: int  # units shipped out to customers that day
    event_time: Timestamp

    constraints = {
        "snapshot_id": Pattern(r"\S{1,128}"),
        "location_sku": Pattern(r"\S{1,128}"),
        "on_hand": Range(min=0, max=10_000_000),
        "demand": Range(min=0, max=10_000_000),
    }
