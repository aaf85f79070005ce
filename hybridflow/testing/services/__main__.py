"""``python -m hybridflow.testing.services NAME [RESOURCE ...]``: run one local service until Ctrl-C.

Creates the named resources, then prints how to reach the service::

    $ python -m hybridflow.testing.services kafka transactions alerts
    kafka ready in 4.2s: kafka://127.0.0.1:40121/TOPIC (topics: transactions, alerts)
    $ python -m hybridflow.testing.services kafka-expansion
    kafka-expansion ready in 2.1s: --kafka_expansion_service=127.0.0.1:40733

Resources: Kafka topics; Pub/Sub topics (each with a subscription ``<topic>-sub``);
S3 / GCS buckets; Bigtable tables as ``TABLE:FAMILY[,FAMILY]``; BigQuery datasets.
"""

from __future__ import annotations

import signal
import sys
import warnings

from hybridflow.testing import services


def _kafka(service, resources):
    from hybridflow.testing.services.kafka import create_topic

    for topic in resources:
        create_topic(service.bootstrap, topic)
    return f"kafka://{service.bootstrap}/TOPIC"


def _pubsub(service, resources):
    for name in resources:
        service.create_subscription(service.create_topic(name), f"{name}-sub")
    return f"export PUBSUB_EMULATOR_HOST={service.host}; pubsub://projects/{services.pubsub.PROJECT}/topics/TOPIC"


def _bigtable(service, resources):
    for spec in resources:
        table, _, families = spec.partition(":")
        service.create_table(table, (families or "d").split(","))
    return (f"export BIGTABLE_EMULATOR_HOST={service.host}; "
            f"bigtable://{services.bigtable.PROJECT}/{services.bigtable.INSTANCE}/TABLE?key=FIELD")


def _buckets(service, resources):
    for bucket in resources:
        service.create_bucket(bucket)


def _s3(service, resources):
    _buckets(service, resources)
    return (" ".join(service.pipeline_flags) + f"; kinesis://STREAM?{service.uri_params()}, "
            f"dynamodb://TABLE?{service.uri_params()}")


def _gcs(service, resources):
    _buckets(service, resources)
    return f"export STORAGE_EMULATOR_HOST={service.host}"


def _bigquery(service, resources):
    for dataset in resources:
        service.create_dataset(dataset)
    return (f"BIGQUERY_EMULATOR_HOST={service.url} (Beam needs redirect_beam() in-process, see "
            "hybridflow.testing.services.bigquery)")


SERVICES = {
    "kafka": (services.KafkaBroker, _kafka),
    "kafka-expansion": (services.KafkaExpansionService, lambda s, r: f"--kafka_expansion_service={s.address}"),
    "pubsub": (services.PubSubEmulator, _pubsub),
    "bigtable": (services.BigtableEmulator, _bigtable),
    "s3": (services.S3Server, _s3),
    "gcs": (lambda: services.GcsEmulator(on_disk=True), _gcs),
    "bigquery": (services.BigQueryEmulator, _bigquery),
    "postgres": (services.PostgresServer, lambda s, r: s.url),
    "hdfs": (services.HdfsCluster, lambda s, r: " ".join(s.pipeline_flags)),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SERVICES:
        print(f"usage: python -m hybridflow.testing.services {{{'|'.join(SERVICES)}}} [RESOURCE ...]", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator")
    name, resources = argv[0], argv[1:]
    make, describe = SERVICES[name]
    try:
        service = make().start()
    except services.ServiceUnavailable as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"{name} ready in {service.startup_seconds:.1f}s: {describe(service, resources)}"
              + (f" (created: {', '.join(resources)})" if resources else "") + "; Ctrl-C stops it", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
