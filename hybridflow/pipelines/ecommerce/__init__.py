"""ecommerce: a shop's clickstream and orders, hybrid batch + streaming (a built-in pipeline).

The package is what any pipeline package holds (the layout of
:mod:`hybridflow.pipelines.iot`):

- :mod:`~hybridflow.pipelines.ecommerce.records`: :class:`ShopEvent`;
- :mod:`~hybridflow.pipelines.ecommerce.generator`: ``synthetic://shop`` (:class:`SyntheticShop`);
- :mod:`~hybridflow.pipelines.ecommerce.demand`: the batch layer, :class:`BuildDemandProfile`;
- :mod:`~hybridflow.pipelines.ecommerce.scoring`: the scoring of both modes, :class:`ScoreShopEvents`;
- :mod:`~hybridflow.pipelines.ecommerce.report`: its sections of ``hybridflow report ecommerce``;
- :mod:`~hybridflow.pipelines.ecommerce.pipeline`: parameters, ``build``, ``sinks`` and :data:`SPEC`,
  declared as the entry point ``ecommerce`` of the group ``hybridflow.pipelines``.
"""

from hybridflow.pipelines.ecommerce.demand import BuildDemandProfile, HourlyDemand, OnlyOrders
from hybridflow.pipelines.ecommerce.generator import SyntheticShop
from hybridflow.pipelines.ecommerce.pipeline import SPEC, EcommerceOptions, build, sinks
from hybridflow.pipelines.ecommerce.records import EVENT_TYPES, ShopEvent, shop_events
from hybridflow.pipelines.ecommerce.scoring import ScoreShopEvents

__all__ = [
    "SPEC", "EcommerceOptions", "build", "sinks", "BuildDemandProfile", "HourlyDemand", "OnlyOrders",
    "ScoreShopEvents", "SyntheticShop", "ShopEvent", "EVENT_TYPES", "shop_events",
]
