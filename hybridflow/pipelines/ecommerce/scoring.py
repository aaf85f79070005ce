"""The ecommerce pipeline's scoring, the same transforms in batch and streaming.

- **Cart abandonment**: session windows per user (``WindowedAggregate``
  with ``session:GAP``) count the session's events, carts, checkouts and
  orders and sum the value put in the cart (``if_else`` of the event type);
  a session with a cart worth more than ``min_cart_value`` and no checkout
  raises ``cart_abandoned`` (key: the user).
- **Demand vs its profile**: the orders of each product per clock hour
  (:class:`~hybridflow.pipelines.ecommerce.demand.HourlyDemand`), joined with
  the product's profile for that hour of day (``Enrich`` on the composite key
  ``product_id, hour``): ``demand_spike`` when the units are
  ``spike_zscore`` standard deviations above the usual mean,
  ``demand_drop`` when they are under ``drop_ratio`` of it (key: the product;
  both only for hours of day with ``min_history`` hours in the profile).
- **Low stock**: each order joined with its product's reorder point
  (``Enrich`` by product): ``low_stock`` when the stock left is under it
  (``threshold_field``; key: the product).
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.transforms import Derive, Enrich, MissingKeyPolicy, Rule, ThresholdAlerts, WindowedAggregate, ZScoreRule
from hybridflow.pipelines.ecommerce.demand import PROFILE_FIELDS, HourlyDemand, OnlyOrders

__all__ = ["ScoreShopEvents", "RULES", "SESSION_AGGREGATIONS"]

#: the rules, by family
RULES = ("cart_abandoned", "demand_spike", "demand_drop", "low_stock")
#: what a session window holds
SESSION_AGGREGATIONS = {
    "events": "count",
    "carts": "sum(is_cart)",
    "checkouts": "sum(is_checkout)",
    "orders": "sum(is_order)",
    "cart_value": "sum(cart_value)",
    "products": "count_distinct(product_id)",
}
_SMALLEST_STDDEV = 1.0  # units: an hour of day whose demand barely moved is not alerted on one unit


class ScoreShopEvents(beam.PTransform):
    """The scoring half of the ecommerce pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.pipelines.ecommerce.records.ShopEvent` records
    (event-time timestamped). Output: a dict with ``alerts``, ``sessions``
    (the session windows), ``demand`` (the hourly windows with their
    profile), ``late`` and ``dead_letters``.

    Args:
      profile: bounded rows of ``BuildDemandProfile()["demand_profile"]``.
      reorder_points: bounded rows of ``BuildDemandProfile()["reorder_points"]``.
      session: the session window of a user (``session:30m``).
      min_cart_value: an abandoned cart raises an alert when worth more than this.
      spike_zscore: standard deviations above the usual units that make a spike.
      drop_ratio: units under this share of the usual mean make a drop.
      min_history: hours of history an hour of day needs before its demand is judged.
      allowed_lateness, cooldown: seconds (the cooldown per rule and product
        of the demand and stock rules; every abandoned cart is an alert).
    """

    def __init__(
        self,
        profile: beam.PCollection,
        reorder_points: beam.PCollection,
        session: str = "session:30m",
        min_cart_value: float = 0.0,
        spike_zscore: float = 3.0,
        drop_ratio: float = 0.25,
        min_history: int = 3,
        allowed_lateness: float = 0.0,
        cooldown: float = 3600.0,
    ):
        super().__init__()
        self._profile = profile
        self._reorder_points = reorder_points
        self._session = session
        self._min_cart_value = min_cart_value
        self._spike_zscore = spike_zscore
        self._drop_ratio = drop_ratio
        self._min_history = min_history
        self._allowed_lateness = allowed_lateness
        self._cooldown = cooldown

    def expand(self, events):
        # cart abandonment: session windows per user
        flagged = events | "SessionFlags" >> Derive(
            is_cart="if_else(event_type == 'add_to_cart', 1, 0)",
            is_checkout="if_else(event_type == 'checkout', 1, 0)",
            is_order="if_else(event_type == 'order', 1, 0)",
            cart_value="if_else(event_type == 'add_to_cart', price * quantity, 0.0)",
        )
        sessions = flagged.records | "UserSessions" >> WindowedAggregate(
            key="user_id", window=self._session, aggregations=SESSION_AGGREGATIONS,
            allowed_lateness=self._allowed_lateness,
        )
        unpaid = sessions.aggregates | "AbandonedValue" >> Derive(
            abandoned_value="if_else(checkouts == 0, cart_value, 0.0)"
        )
        abandoned = (
            unpaid.records
            | "AbandonmentRule" >> ThresholdAlerts(
                [Rule("cart_abandoned", field="abandoned_value", op=">", threshold=self._min_cart_value)],
                key="user_id",
            )
        )

        # demand per product and hour vs its profile for that hour of day
        orders = events | "OnlyOrders" >> OnlyOrders()
        hourly = orders | "HourlyDemand" >> HourlyDemand(self._allowed_lateness)
        demand = hourly.aggregates | "EnrichWithProfile" >> Enrich(
            self._profile, key=["product_id", "hour"], fields=list(PROFILE_FIELDS), prefix="usual_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        judged = demand.records | "DropFloor" >> Derive(
            drop_below=f"if_else(usual_hours >= {int(self._min_history)}, usual_units_mean * {self._drop_ratio!r}, null)"
        )
        demand_alerts = judged.records | "DemandRules" >> ThresholdAlerts(
            [
                ZScoreRule("demand_spike", value_field="units", mean_field="usual_units_mean",
                           stddev_field="usual_units_stddev", threshold=self._spike_zscore,
                           count_field="usual_hours", min_count=self._min_history, min_stddev=_SMALLEST_STDDEV),
                Rule("demand_drop", field="units", op="<", threshold_field="drop_below"),
            ],
            key="product_id",
            cooldown=self._cooldown,
        )

        # low stock: each order against its product's reorder point
        stocked = orders | "EnrichWithReorderPoint" >> Enrich(
            self._reorder_points, key="product_id", fields=["reorder_point"], on_missing=MissingKeyPolicy.NULLS,
        )
        stock_alerts = stocked.records | "StockRule" >> ThresholdAlerts(
            [Rule("low_stock", field="stock", op="<", threshold_field="reorder_point")],
            key="product_id",
            cooldown=self._cooldown,
        )
        return {
            "alerts": (abandoned, demand_alerts, stock_alerts) | "AllAlerts" >> beam.Flatten(),
            "sessions": sessions.aggregates,
            "demand": judged.records,
            "late": (sessions.late, hourly.late) | "AllLate" >> beam.Flatten(),
            "dead_letters": (
                flagged.dead_letters, unpaid.dead_letters, demand.dead_letters, judged.dead_letters,
                stocked.dead_letters,
            ) | "ScoringDeadLetters" >> beam.Flatten(),
        }
