"""The ecommerce pipeline's batch layer: per-product demand from history.

:class:`HourlyDemand` is the step both layers share: the order events, per
product and clock hour, counted (``orders``) and summed (``units``) in fixed
one-hour windows, each row carrying its hour of day (``hour``, UTC).

:class:`BuildDemandProfile` computes from the history's order events:

- ``demand_profile``: per product and hour of day, how many of the history's
  hours had orders (``hours``) and the mean, standard deviation and 90th
  percentile of the units ordered in such an hour
  (:class:`~hybridflow.transforms.Summarize` with a composite key); the
  streaming layer compares each live hour with it;
- ``reorder_points``: per product, the mean units of an hour with orders
  (``units_per_hour``) and the stock below which it is low:
  ``reorder_point = units_per_hour * lead_time_hours`` (what it sells while
  a restock is on its way).

An hour without any order of a product has no window, so the means are over
the hours with orders.
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.transforms import Derive, Filter, Summarize, WindowedAggregate

__all__ = ["OnlyOrders", "HourlyDemand", "BuildDemandProfile", "PROFILE_FIELDS"]

#: the fields of a demand profile row besides product_id and hour
PROFILE_FIELDS = ("hours", "units_mean", "units_stddev", "units_p90")


class OnlyOrders(beam.PTransform):
    """:class:`~hybridflow.pipelines.ecommerce.records.ShopEvent` records -> the ``order`` events."""

    def expand(self, events):
        # a comparison of a string field cannot fail: no dead letters to route
        return (events | "Orders" >> Filter("event_type == 'order'")).records


class HourlyDemand(beam.PTransform):
    """Order events -> one row per product and clock hour with orders:
    ``product_id, hour, window_start, window_end, pane, pane_index, orders, units``.

    Returns the :class:`~hybridflow.transforms.WindowedAggregate` result
    (``.aggregates``, ``.late``)."""

    def __init__(self, allowed_lateness: float = 0.0):
        super().__init__()
        self._allowed_lateness = allowed_lateness

    def expand(self, orders):
        timed = (orders | "HourOfDay" >> Derive(hour="hour(event_time)")).records  # cannot fail: no dead letters
        return timed | "PerHour" >> WindowedAggregate(
            key=["product_id", "hour"], window="fixed:1h",
            aggregations={"orders": "count", "units": "sum(quantity)"},
            allowed_lateness=self._allowed_lateness,
        )


class BuildDemandProfile(beam.PTransform):
    """History events -> ``{"demand_profile": ..., "reorder_points": ...}`` (see the module).

    Args:
      lead_time_hours: hours a restock takes; the reorder point is that many
        hours of the product's usual demand.
    """

    def __init__(self, lead_time_hours: float = 4.0):
        super().__init__()
        self._lead_time_hours = float(lead_time_hours)

    def expand(self, events):
        hourly = (events | "OnlyOrders" >> OnlyOrders() | "HourlyDemand" >> HourlyDemand()).aggregates
        profile = hourly | "ProfilePerHourOfDay" >> Summarize(
            key=["product_id", "hour"],
            aggregations={"hours": "count", "units_mean": "mean(units)", "units_stddev": "stddev(units)",
                          "units_p90": "p90:nearest(units)"},
        )
        reorder = (
            hourly
            | "PerProduct" >> Summarize(key="product_id", aggregations={"hours": "count",
                                                                        "units_per_hour": "mean(units)"})
            | "ReorderPoint" >> Derive(reorder_point=f"units_per_hour * {self._lead_time_hours!r}")
        ).records  # float arithmetic cannot fail
        return {"demand_profile": profile, "reorder_points": reorder}
