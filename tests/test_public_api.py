"""The public API is curated: this test locks the exported names."""

import hybridflow
import hybridflow.io
import hybridflow.schemas
import hybridflow.transforms

EXPECTED = {
    "BEAM_VERSION",
    "ReadFrom", "WriteTo", "HybridRead", "SyntheticStream", "SyntheticTransactions",
    "ParseRecords", "Filter", "Select", "Derive", "Enrich", "MissingKeyPolicy", "WindowedAggregate", "TopPerWindow",
    "Summarize", "Aggregation",
    "FixedWindow", "SlidingWindow", "SessionWindow", "TriggerSpec", "Accumulation",
    "Dedupe", "LookupHandler", "InMemoryLookup", "BigtableLookup", "DynamoDBLookup",
    "ThresholdAlerts", "Rule", "ZScoreRule", "NotInRule",
    "LaunchOnAlert", "Launcher", "LaunchRecord", "SubprocessLauncher", "FlexTemplateLauncher",
    "AirflowLauncher",
    "Transaction", "CardProfile", "Alert", "DeadLetter", "LateRecord", "Range", "OneOf", "Pattern",
    "PostAlerts", "HybridflowOptions", "MonitoringOptions", "PipelineSpec", "PipelineParameters", "register_pipeline", "get_pipeline", "list_pipelines",
    "HybridflowError", "UsageError", "UnknownPipelineError", "UnknownProfileError",
    "InvalidOptionError", "InvalidUriError", "MissingExtraError", "SchemaError",
    "ConnectorError", "RecordError", "InvalidLocationError", "CorruptInputError", "JobFailedError",
    "TooManyDeadLettersError",
}


def test_the_fraud_names_are_the_fraud_packages():
    """Transaction, CardProfile and the transactions generator belong to the fraud pipeline
    (hybridflow.pipelines.fraud); the package root, hybridflow.io and hybridflow.testing
    re-export them under their old names (the docs and the transforms' docstrings use them as
    the running example); hybridflow.schemas lists only what every pipeline shares, and still
    resolves the two record names that users' Beam YAML files give (schema: hybridflow.schemas.Transaction)."""
    import hybridflow.pipelines.fraud.generator as generator
    import hybridflow.pipelines.fraud.records as records
    import hybridflow.testing

    assert hybridflow.Transaction is records.Transaction and hybridflow.CardProfile is records.CardProfile
    assert hybridflow.testing.transactions is records.transactions
    assert hybridflow.SyntheticTransactions is hybridflow.io.SyntheticTransactions is generator.SyntheticTransactions
    assert hybridflow.io.ReadSyntheticTransactions is generator.ReadSyntheticTransactions
    assert hybridflow.io.generate_transactions is hybridflow.io.generate_records
    assert hybridflow.schemas.Transaction is records.Transaction
    assert hybridflow.schemas.CardProfile is records.CardProfile
    assert not {"Transaction", "CardProfile"} & set(hybridflow.schemas.__all__)


def test_exported_names_are_exactly_the_curated_set():
    assert set(hybridflow.__all__) == EXPECTED
    assert len(hybridflow.__all__) == len(EXPECTED), "duplicate names in __all__"


def test_every_exported_name_resolves():
    for name in hybridflow.__all__:
        assert getattr(hybridflow, name) is not None, name


def test_core_transforms_are_exported_from_both_places():
    for name in ("ParseRecords", "Filter", "Select", "Derive", "Enrich", "WindowedAggregate", "Dedupe", "ThresholdAlerts"):
        assert name in hybridflow.transforms.__all__
        assert getattr(hybridflow.transforms, name) is getattr(hybridflow, name)


def test_monitoring_exports_are_curated():
    import hybridflow.monitoring

    assert set(hybridflow.monitoring.__all__) == {
        "JobStatus", "MetricsExporter", "metric_families", "JobMonitor", "deliver_alerts", "job_report",
        "PostAlerts", "WriteToWebhook", "WebhookClient", "WebhookError", "Delivery", "dashboard_path",
        "cloud_monitoring_paths",
    }
    for name in hybridflow.monitoring.__all__:
        assert getattr(hybridflow.monitoring, name) is not None, name
    assert hybridflow.PostAlerts is hybridflow.monitoring.PostAlerts


def test_every_error_derives_from_the_one_tree():
    for name in hybridflow.__all__:
        obj = getattr(hybridflow, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, hybridflow.HybridflowError), name


IO_EXPECTED = {
    "ReadFrom", "WriteTo", "HybridRead", "ReadFromFiles", "WriteToFiles", "ReadFromPubSub", "WriteToPubSub", "ReadFromKafka",
    "WriteToKafka", "ReadFromBigQuery", "WriteToBigQuery", "WriteToBigtable", "ReadFromPostgres",
    "ReadSynthetic", "SyntheticStream", "generate_records",
    "ReadSyntheticTransactions", "SyntheticTransactions", "generate_transactions", "EndpointUri", "parse_uri",
    "ConnectorOptions", "supports_columnar", "ReadFromKinesis", "WriteToKinesis", "WriteToDynamoDB",
    "ReadFromIceberg", "WriteToIceberg",
}
SERVICES_EXPECTED = {
    "ServiceProcess", "LoopbackBinary", "ServiceUnavailable", "free_port", "tools_home", "KafkaBroker", "KafkaExpansionService",
    "PubSubEmulator", "BigtableEmulator", "S3Server", "GcsEmulator", "anonymous_gcp", "BigQueryEmulator",
    "PostgresServer", "HdfsCluster",
}


def test_io_and_services_exports_are_curated():
    import hybridflow.io
    import hybridflow.testing.services

    assert set(hybridflow.io.__all__) == IO_EXPECTED
    assert set(hybridflow.testing.services.__all__) == SERVICES_EXPECTED
    for module in (hybridflow.io, hybridflow.testing.services):
        for name in module.__all__:
            assert getattr(module, name) is not None, name


def test_columnar_subpackage_exports():
    import hybridflow.columnar
    import hybridflow.io

    assert set(hybridflow.columnar.__all__) == {
        "ArrowTableType", "arrow_tables", "is_columnar", "ToRecords", "ToTables",
        "records_to_table", "table_to_records", "empty_table",
    }
    assert "supports_columnar" in hybridflow.io.__all__
