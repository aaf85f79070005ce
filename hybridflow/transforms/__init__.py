"""Reusable PTransforms: parse, filter/select/derive, enrich, windowed aggregation, dedupe, alerts.

Each transform is typed (schema'd input and output), decides batch vs
streaming behaviour from ``pcoll.is_bounded`` inside ``expand()``, labels its
inner steps, and routes bad records to a dead-letter output
(:class:`~hybridflow.schemas.DeadLetter`) instead of dropping them.
"""

from hybridflow.transforms.aggregate import WindowedAggregate
from hybridflow.transforms.aggregations import Aggregation
from hybridflow.transforms.alerts import NotInRule, Rule, ThresholdAlerts, ZScoreRule
from hybridflow.transforms.dedupe import Dedupe
from hybridflow.transforms.expressions import Derive, Filter, Select
from hybridflow.transforms.enrich import Enrich, MissingKeyPolicy
from hybridflow.transforms.lookups import BigtableLookup, DynamoDBLookup, InMemoryLookup, LookupHandler
from hybridflow.transforms.parse import ParseRecords
from hybridflow.transforms.summarize import Summarize
from hybridflow.transforms.top import TopPerWindow
from hybridflow.transforms.windows import (
    Accumulation,
    FixedWindow,
    PaneTiming,
    SessionWindow,
    SlidingWindow,
    TriggerSpec,
)

__all__ = [
    "ParseRecords",
    "Filter",
    "Select",
    "Derive",
    "Enrich",
    "MissingKeyPolicy",
    "LookupHandler",
    "InMemoryLookup",
    "BigtableLookup",
    "DynamoDBLookup",
    "WindowedAggregate",
    "TopPerWindow",
    "Summarize",
    "Aggregation",
    "FixedWindow",
    "SlidingWindow",
    "SessionWindow",
    "TriggerSpec",
    "Accumulation",
    "PaneTiming",
    "Dedupe",
    "ThresholdAlerts",
    "Rule",
    "ZScoreRule",
    "NotInRule",
]
