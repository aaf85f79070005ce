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

from hybridflow import _quiet
from hybridflow._lazy import lazy_exports
from hybridflow._pins import BEAM_VERSION

_quiet.install()  # before anything here imports Beam: its four notices that are not the user's business

# Public names and the module each lives in. They are imported on first use
# (PEP 562), so `hybridflow --help` and usage errors answer without importing
# Apache Beam, and the CLI can keep Beam's import-time warnings quiet.
_EXPORTS = {
    "ReadFrom": "hybridflow.io",
    "WriteTo": "hybridflow.io",
    "HybridRead": "hybridflow.io",
    "SyntheticStream": "hybridflow.io",
    "SyntheticTransactions": "hybridflow.pipelines.fraud.generator",
    "ParseRecords": "hybridflow.transforms",
    "Filter": "hybridflow.transforms",
    "Select": "hybridflow.transforms",
    "Derive": "hybridflow.transforms",
    "Enrich": "hybridflow.transforms",
    "MissingKeyPolicy": "hybridflow.transforms",
    "WindowedAggregate": "hybridflow.transforms",
    "TopPerWindow": "hybridflow.transforms",
    "Summarize": "hybridflow.transforms",
    "Aggregation": "hybridflow.transforms",
    "FixedWindow": "hybridflow.transforms",
    "SlidingWindow": "hybridflow.transforms",
    "SessionWindow": "hybridflow.transforms",
    "TriggerSpec": "hybridflow.transforms",
    "Accumulation": "hybridflow.transforms",
    "Dedupe": "hybridflow.transforms",
    "LookupHandler": "hybridflow.transforms",
    "InMemoryLookup": "hybridflow.transforms",
    "BigtableLookup": "hybridflow.transforms",
    "DynamoDBLookup": "hybridflow.transforms",
    "ThresholdAlerts": "hybridflow.transforms",
    "Rule": "hybridflow.transforms",
    "ZScoreRule": "hybridflow.transforms",
    "NotInRule": "hybridflow.transforms",
    "LaunchOnAlert": "hybridflow.transforms.launch",
    "Launcher": "hybridflow.launchers",
    "LaunchRecord": "hybridflow.launchers",
    "SubprocessLauncher": "hybridflow.launchers.local",
    "FlexTemplateLauncher": "hybridflow.launchers.dataflow",
    "AirflowLauncher": "hybridflow.launchers.airflow",
    # the fraud pipeline's records: the running example of the docs and docstrings
    "Transaction": "hybridflow.pipelines.fraud.records",
    "CardProfile": "hybridflow.pipelines.fraud.records",
    "Alert": "hybridflow.schemas",
    "DeadLetter": "hybridflow.schemas",
    "LateRecord": "hybridflow.schemas",
    "Range": "hybridflow.schemas",
    "OneOf": "hybridflow.schemas",
    "Pattern": "hybridflow.schemas",
    "HybridflowOptions": "hybridflow.options",
    "MonitoringOptions": "hybridflow.options",
    "PostAlerts": "hybridflow.monitoring",
    "PipelineSpec": "hybridflow.pipelines",
    "PipelineParameters": "hybridflow.pipelines",
    "register_pipeline": "hybridflow.pipelines",
    "get_pipeline": "hybridflow.pipelines",
    "list_pipelines": "hybridflow.pipelines",
    "HybridflowError": "hybridflow.errors",
    "UsageError": "hybridflow.errors",
    "UnknownPipelineError": "hybridflow.errors",
    "UnknownProfileError": "hybridflow.errors",
    "InvalidOptionError": "hybridflow.errors",
    "InvalidUriError": "hybridflow.errors",
    "MissingExtraError": "hybridflow.errors",
    "SchemaError": "hybridflow.errors",
    "ConnectorError": "hybridflow.errors",
    "RecordError": "hybridflow.errors",
    "InvalidLocationError": "hybridflow.errors",
    "CorruptInputError": "hybridflow.errors",
    "JobFailedError": "hybridflow.errors",
    "TooManyDeadLettersError": "hybridflow.errors",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__version__ = "0.1.0"

__all__ = [
    "BEAM_VERSION",
    # sources and sinks
    "ReadFrom",
    "WriteTo",
    "HybridRead",
    "SyntheticStream",
    "SyntheticTransactions",
    # transforms
    "ParseRecords",
    "Filter",
    "Select",
    "Derive",
    "Enrich",
    "MissingKeyPolicy",
    "WindowedAggregate",
    "TopPerWindow",
    "Summarize",
    "Aggregation",
    "FixedWindow",
    "SlidingWindow",
    "SessionWindow",
    "TriggerSpec",
    "Accumulation",
    "Dedupe",
    "LookupHandler",
    "InMemoryLookup",
    "BigtableLookup",
    "DynamoDBLookup",
    "ThresholdAlerts",
    "Rule",
    "ZScoreRule",
    "NotInRule",
    # event-driven launches of batch pipelines
    "LaunchOnAlert",
    "Launcher",
    "LaunchRecord",
    "SubprocessLauncher",
    "FlexTemplateLauncher",
    "AirflowLauncher",
    # records
    "Transaction",
    "CardProfile",
    "Alert",
    "DeadLetter",
    "LateRecord",
    "Range",
    "OneOf",
    "Pattern",
    # alert delivery
    "PostAlerts",
    # pipelines and options
    "HybridflowOptions",
    "MonitoringOptions",
    "PipelineSpec",
    "PipelineParameters",
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
    "InvalidLocationError",
    "CorruptInputError",
    "JobFailedError",
    "TooManyDeadLettersError",
]
