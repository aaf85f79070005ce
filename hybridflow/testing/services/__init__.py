"""Real local services for integration tests, no Docker: start, wait until ready, stop.

=====================  ===========================================  ==========================
class                  service                                      clients find it through
=====================  ===========================================  ==========================
:class:`KafkaBroker`   Kafka 4.1 broker (KRaft), jars from Maven;   ``bootstrap`` address,
                       a second, SASL_PLAINTEXT listener            ``sasl_bootstrap``
:class:`KafkaExpansionService`  Beam's Java Kafka IO + worker pool  ``address`` (expansion_service)
:class:`PubSubEmulator`  pstest, the Go Pub/Sub fake                ``PUBSUB_EMULATOR_HOST``
:class:`BigtableEmulator`  the Go Bigtable emulator                 ``BIGTABLE_EMULATOR_HOST``
:class:`S3Server`      moto server (S3, Kinesis, DynamoDB)          ``pipeline_flags`` (--s3_*),
                                                                    ``uri_params()``
:class:`GcsEmulator`   gcp-storage-emulator                         ``STORAGE_EMULATOR_HOST``
:class:`BigQueryEmulator`  bqemulator (DuckDB)                      ``redirect_beam()``
:class:`PostgresServer`  Debian's PostgreSQL                        ``url`` / ``dsn``
:class:`HdfsCluster`   Hadoop's MiniDFSCluster, jars from Maven     ``pipeline_flags`` (--hdfs_*)
=====================  ===========================================  ==========================

Each binds to a free ``127.0.0.1`` port, is a context manager, exports its
environment variables while running, and removes its files on ``stop()``.
``make tools-services`` provisions them (``tools/services``, ``tools/kafka``, ``tools/hdfs``);
a missing one raises :class:`ServiceUnavailable` naming the fix.

For pytest, ``pytest_plugins = ["hybridflow.testing.services.pytest_plugin"]``
gives session-scoped fixtures and per-test resources with unique names (see
that module). Example::

    from hybridflow.testing.services import PubSubEmulator

    with PubSubEmulator() as pubsub:
        topic = pubsub.create_topic("alerts")
        ...  # ReadFrom(f"pubsub://{topic}") talks to the fake
"""

from hybridflow.testing.services._process import (
    LoopbackBinary,
    ServiceProcess,
    ServiceUnavailable,
    free_port,
    tools_home,
)
from hybridflow.testing.services.bigquery import BigQueryEmulator
from hybridflow.testing.services.bigtable import BigtableEmulator
from hybridflow.testing.services.gcs import GcsEmulator, anonymous_gcp
from hybridflow.testing.services.hdfs import HdfsCluster
from hybridflow.testing.services.kafka import KafkaBroker, KafkaExpansionService
from hybridflow.testing.services.postgres import PostgresServer
from hybridflow.testing.services.pubsub import PubSubEmulator
from hybridflow.testing.services.s3 import S3Server

__all__ = [
    "ServiceProcess",
    "LoopbackBinary",
    "ServiceUnavailable",
    "free_port",
    "tools_home",
    "KafkaBroker",
    "KafkaExpansionService",
    "PubSubEmulator",
    "BigtableEmulator",
    "S3Server",
    "GcsEmulator",
    "anonymous_gcp",
    "BigQueryEmulator",
    "PostgresServer",
    "HdfsCluster",
]
