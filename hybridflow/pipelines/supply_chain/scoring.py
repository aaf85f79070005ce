"""The supply_chain pipeline's scoring, the same transforms in batch and streaming.

ETA deviation, per shipment: fixed windows of its pings (the latest, i.e.
smallest, distance left and the mean speed), joined with its plan
(``Enrich`` by shipment), the projected arrival
``window_end + distance / speed`` against the planned ETA (``Derive``:
``delay_minutes``), and the rule ``eta_late`` (late by more than
``late_threshold``).

Stock-out risk, per item-location: the shipments' windows again, each
counting its quantity as inbound when the truck is projected to arrive
within ``horizon`` (``if_else``), summed per item-location and window, joined
with the batch layer's stock row (``Enrich`` by item-location) and the rule
``stock_out_risk``: stock on hand + inbound in time below the demand over the
horizon (a per-key threshold, ``threshold_field``). An item-location is
scored in each window in which one of its trucks reports.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam

from hybridflow.errors import SchemaError
from hybridflow.pipelines.supply_chain.stock import STOCK_FIELDS
from hybridflow.transforms import Derive, Enrich, MissingKeyPolicy, Rule, ThresholdAlerts, WindowedAggregate
from hybridflow.transforms.windows import FixedWindow, window_spec

__all__ = ["ScoreShipments", "RULES", "PLAN_FIELDS"]

#: the rules, in the order they are evaluated
RULES = ("eta_late", "stock_out_risk")
#: the plan fields joined onto each shipment window
PLAN_FIELDS = ("truck_id", "warehouse", "sku", "location_sku", "quantity", "planned_eta")


class ScoreShipments(beam.PTransform):
    """The scoring half of the supply_chain pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.pipelines.supply_chain.records.TruckPing`
    records (event-time timestamped). Output: a dict with ``alerts``,
    ``shipments`` (per shipment and window: the projection and its delay),
    ``stock`` (per item-location and window: inbound, stock, demand over the
    horizon), ``late`` and ``dead_letters`` (pings of a shipment with no plan,
    reason ``missing_key``).

    Args:
      plans: a bounded PCollection of
        :class:`~hybridflow.pipelines.supply_chain.records.ShipmentPlan`.
      stock: a bounded PCollection of stock rows
        (:class:`~hybridflow.pipelines.supply_chain.stock.BuildStockLevels`).
      window: a fixed window (``fixed:15m``): each shipment counts once per
        item-location window.
      late_threshold: seconds; ``eta_late`` when the projected arrival is
        more than this after the planned ETA.
      horizon: seconds; inbound counts when projected within it, and the
        demand over it is the stock-out threshold.
      allowed_lateness, cooldown: seconds.
    """

    def __init__(
        self,
        plans: beam.PCollection,
        stock: beam.PCollection,
        window: str = "fixed:15m",
        late_threshold: float = 1800.0,
        horizon: float = 43200.0,
        allowed_lateness: float = 300.0,
        cooldown: float = 3600.0,
        early_count: Optional[int] = None,
    ):
        super().__init__()
        if not isinstance(window_spec(window), FixedWindow):
            raise SchemaError(
                f"ScoreShipments: window={window!r} must be a fixed window (e.g. fixed:15m): "
                "a shipment must count once in its item-location's window"
            )
        self._plans = plans
        self._stock = stock
        self._window = window
        self._late_minutes = late_threshold / 60.0
        self._horizon_hours = horizon / 3600.0
        self._allowed_lateness = allowed_lateness
        self._cooldown = cooldown
        self._trigger = {"early_count": early_count}

    def expand(self, pings):
        windows = pings | "ShipmentWindows" >> WindowedAggregate(
            key="shipment_id",
            window=self._window,
            aggregations={"pings": "count", "distance_km": "min(distance_km)", "speed_kmh": "mean(speed_kmh)"},
            allowed_lateness=self._allowed_lateness,
            trigger=self._trigger,
        )
        planned = windows.aggregates | "EnrichWithPlan" >> Enrich(
            self._plans, key="shipment_id", fields=list(PLAN_FIELDS), on_missing=MissingKeyPolicy.DEAD_LETTER,
        )
        # a stopped truck (mean speed 0: arrived, at its dock) has no projection (null), hence no delay
        in_time = f"distance_km == 0 or distance_km / speed_kmh <= {self._horizon_hours!r}"
        projected = planned.records | "Project" >> Derive(
            hours_left="round(distance_km / speed_kmh, 4)",
            delay_minutes="round((epoch_seconds(window_end) + 3600 * distance_km / speed_kmh"
            " - epoch_seconds(planned_eta)) / 60, 1)",
            inbound=f"if_else({in_time}, quantity, 0)",
        )
        late = projected.records | "EtaRule" >> ThresholdAlerts(
            [Rule("eta_late", field="delay_minutes", op=">", threshold=self._late_minutes)],
            key="shipment_id",
            cooldown=self._cooldown,
        )
        items = projected.records | "ItemWindows" >> WindowedAggregate(
            key="location_sku",
            window=self._window,
            aggregations={"shipments": "count", "inbound": "sum(inbound)"},
            allowed_lateness=self._allowed_lateness,
        )
        stocked = items.aggregates | "EnrichWithStock" >> Enrich(
            self._stock, key="location_sku", fields=list(STOCK_FIELDS), prefix="stock_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        covered = stocked.records | "Cover" >> Derive(
            available="stock_on_hand + inbound",
            horizon_demand=f"round(stock_demand_mean * {self._horizon_hours!r} / 24, 2)",
        )
        risk = covered.records | "StockRule" >> ThresholdAlerts(
            [Rule("stock_out_risk", field="available", op="<", threshold_field="horizon_demand")],
            key="location_sku",
            cooldown=self._cooldown,
        )
        return {
            "alerts": (late, risk) | "AllAlerts" >> beam.Flatten(),
            "shipments": projected.records,
            "stock": covered.records,
            "late": (windows.late, items.late) | "AllLate" >> beam.Flatten(),
            "dead_letters": (planned.dead_letters, projected.dead_letters, stocked.dead_letters,
                             covered.dead_letters) | "ScoringDeadLetters" >> beam.Flatten(),
        }
