"""supply_chain: ETA deviation per shipment and stock-out risk per
item-location, hybrid batch + streaming (a built-in pipeline).

The package is what any pipeline package holds (the layout of
:mod:`hybridflow.pipelines.iot`):

- :mod:`~hybridflow.pipelines.supply_chain.records`: :class:`TruckPing`,
  :class:`ShipmentPlan`, :class:`StockSnapshot`;
- :mod:`~hybridflow.pipelines.supply_chain.generator`: ``synthetic://truck-pings``,
  ``synthetic://shipment-plans``, ``synthetic://stock-snapshots``;
- :mod:`~hybridflow.pipelines.supply_chain.stock`: the batch layer, :class:`BuildStockLevels`;
- :mod:`~hybridflow.pipelines.supply_chain.scoring`: the scoring of both modes, :class:`ScoreShipments`;
- :mod:`~hybridflow.pipelines.supply_chain.report`: its sections of ``hybridflow report supply_chain``;
- :mod:`~hybridflow.pipelines.supply_chain.pipeline`: parameters, ``build``, ``sinks`` and :data:`SPEC`,
  declared as the entry point ``supply_chain`` of the group ``hybridflow.pipelines``.
"""

from hybridflow.pipelines.supply_chain.generator import (
    SyntheticShipmentPlans, SyntheticStockSnapshots, SyntheticTruckPings
)
from hybridflow.pipelines.supply_chain.pipeline import SPEC, SupplyChainOptions, build, sinks
from hybridflow.pipelines.supply_chain.records import ShipmentPlan, StockSnapshot, TruckPing
from hybridflow.pipelines.supply_chain.scoring import ScoreShipments
from hybridflow.pipelines.supply_chain.stock import BuildStockLevels

__all__ = [
    "SPEC", "SupplyChainOptions", "build", "sinks", "BuildStockLevels", "ScoreShipments",
    "SyntheticTruckPings", "SyntheticShipmentPlans", "SyntheticStockSnapshots",
    "TruckPing", "ShipmentPlan", "StockSnapshot",
]
