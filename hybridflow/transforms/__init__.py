"""Reusable PTransforms: parse, enrich, windowed aggregation, alerts.

Each transform is typed (schema'd input and output), decides batch vs
streaming behaviour from ``pcoll.is_bounded`` inside ``expand()``, labels its
inner steps, and routes bad records to a dead-letter output
(:class:`~hybridflow.schemas.DeadLetter`) instead of dropping them.
"""

from hybridflow.transforms.aggregate import WindowedAggregate
from hybridflow.transforms.aggregations import Aggregation
from hybridflow.transforms.alerts import NotInRule, Rule, ThresholdAlerts, ZScoreRule
from hybridflow.transforms.enrich import Enrich, MissingKeyPolicy
from hybridflow.transforms.parse import ParseRecords
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
    "Enrich",
    "MissingKeyPolicy",
    "WindowedAggregate",
    "Aggregation",
    "FixedWindow",
    "SlidingWindow",
    "SessionWindow",
    "TriggerSpec",
    "Accumulation",
    "PaneTiming",
    "ThresholdAlerts",
    "Rule",
    "ZScoreRule",
    "NotInRule",
]
