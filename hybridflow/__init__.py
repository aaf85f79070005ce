"""hybridflow: reusable Apache Beam transforms and pipelines for hybrid batch + streaming.

The same transform gives the same answer on a bounded (batch) and an unbounded
(streaming) input; pipelines run on DirectRunner/Prism, Flink and Dataflow.

Compose the transforms in your own Beam code::

    import apache_beam as beam
    from hybridflow import ReadFrom, ParseRecords, WindowedAggregate, Transaction

    with beam.Pipeline() as p:
        txns = p | ReadFrom("synthetic://transactions?count=1000") | ParseRecords(Transaction)
        counts = txns.records | WindowedAggregate(
            key="card_id", window="fixed:60s", aggregations={"n": "count"})
"""

from hybridflow._pins import BEAM_VERSION
from hybridflow.errors import (
    ConnectorError,
    HybridflowError,
    InvalidOptionError,
    InvalidUriError,
    MissingExtraError,
    RecordError,
    SchemaError,
    UnknownPipelineError,
    UnknownProfileError,
    UsageError,
)
from hybridflow.io import ReadFrom, SyntheticTransactions, WriteTo
from hybridflow.options import HybridflowOptions
from hybridflow.pipelines import PipelineSpec, get_pipeline, list_pipelines, register_pipeline
from hybridflow.schemas import Alert, CardProfile, DeadLetter, LateRecord, OneOf, Pattern, Range, Transaction
from hybridflow.transforms import (
    Accumulation,
    Aggregation,
    Enrich,
    FixedWindow,
    MissingKeyPolicy,
    NotInRule,
    ParseRecords,
    Rule,
    SessionWindow,
    SlidingWindow,
    ThresholdAlerts,
    TriggerSpec,
    WindowedAggregate,
    ZScoreRule,
)

__version__ = "0.1.0"

__all__ = [
    "BEAM_VERSION",
    # sources and sinks
    "ReadFrom",
    "WriteTo",
    "SyntheticTransactions",
    # transforms
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
    "ThresholdAlerts",
    "Rule",
    "ZScoreRule",
    "NotInRule",
    # records
    "Transaction",
    "CardProfile",
    "Alert",
    "DeadLetter",
    "LateRecord",
    "Range",
    "OneOf",
    "Pattern",
    # pipelines and options
    "HybridflowOptions",
    "PipelineSpec",
    "register_pipeline",
    "get_pipeline",
    "list_pipelines",
    # errors
    "HybridflowError",
    "UsageError",
    "UnknownPipelineError",
    "UnknownProfileError",
    "InvalidOptionError",
    "InvalidUriError",
    "MissingExtraError",
    "SchemaError",
    "ConnectorError",
    "RecordError",
]
