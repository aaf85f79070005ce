"""The supply_chain pipeline's batch layer: per item-location, its demand rate
and its stock level, from the history of daily stock snapshots.

:class:`BuildStockLevels` outputs one row per ``location_sku``: the latest
snapshot (its ``on_hand``, ``warehouse``, ``sku``, ``event_time``: the stock
level the streaming layer starts from) joined with the number of days of
history and the exact mean and standard deviation of the daily demand
(:class:`~hybridflow.transforms.Summarize`).
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.pipelines.supply_chain.records import StockSnapshot
from hybridflow.transforms import Enrich, Summarize

__all__ = ["BuildStockLevels", "STOCK_FIELDS"]

#: the fields of a stock row the scoring joins onto each item-location's windows
STOCK_FIELDS = ("on_hand", "days", "demand_mean", "demand_stddev")


def _latest_of(pair):
    _, snapshots = pair
    # the latest close; two snapshots of one close: the larger snapshot_id, so the choice is stable
    return max(snapshots, key=lambda s: (s.event_time, s.snapshot_id))


class BuildStockLevels(beam.PTransform):
    """:class:`~hybridflow.pipelines.supply_chain.records.StockSnapshot` records
    -> ``(rows, dead_letters)``, one row per item-location: the latest
    snapshot's fields + ``days``, ``demand_mean``, ``demand_stddev``."""

    def expand(self, snapshots):
        demand = snapshots | "Demand" >> Summarize(
            key="location_sku",
            aggregations={"days": "count", "demand_mean": "mean(demand)", "demand_stddev": "stddev(demand)"},
        )
        latest = (
            snapshots
            | "ByItem" >> beam.Map(lambda s: (s.location_sku, s))
            | "GroupByItem" >> beam.GroupByKey()
            | "Latest" >> beam.Map(_latest_of).with_output_types(StockSnapshot)
        )
        # every item of `latest` has a demand row (both come from the same snapshots)
        return latest | "WithDemand" >> Enrich(demand, key="location_sku", prefix="")
