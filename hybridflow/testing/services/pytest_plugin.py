"""pytest fixtures for the local services: ``pytest_plugins = ["hybridflow.testing.services.pytest_plugin"]``.

Session-scoped, each started once on first use and stopped at the end:
``kafka_broker``, ``kafka_expansion_service``, ``pubsub_emulator``,
``bigtable_emulator``, ``s3_server`` (moto: S3, Kinesis, DynamoDB),
``gcs_emulator`` (on disk, shared with BigQuery load jobs),
``bigquery_emulator`` (Beam redirected to it), ``postgres_server``,
``hdfs_cluster`` (MiniDFSCluster).

Per test, with unique names and cleanup: ``unique_name`` (a fresh
identifier), ``kafka_topic`` (a factory: ``kafka_topic()`` creates a topic),
``pubsub_topic`` (factory: topic + subscription), ``s3_bucket``,
``gcs_bucket``, ``bigquery_dataset``, ``bigtable_table`` (factory),
``postgres_schema``, ``kinesis_stream`` (factory: ``kinesis_stream(shards=1)``)
and ``dynamodb_table`` (factory: ``dynamodb_table(key)``), both on the moto server.

Runners: ``prism_flags`` (session; the flags that run a pipeline on the Prism
binary ``make tools`` provisioned).

A service or runner that cannot start (not provisioned, missing client
library, crashed) skips the test with the reason, or fails it when
``HYBRIDFLOW_REQUIRE_SERVICES=1`` (CI); :func:`unavailable` and
:func:`provisioned` do the same for a test's own requirements. Tests that use
any of the service fixtures get the ``services`` marker.
"""

from __future__ import annotations

import os
import uuid

import pytest

from hybridflow.testing.services._process import ServiceUnavailable

SERVICE_FIXTURES = {
    "kafka_broker", "kafka_expansion_service", "pubsub_emulator", "bigtable_emulator", "s3_server",
    "gcs_emulator", "bigquery_emulator", "postgres_server", "hdfs_cluster",
}


def require_services() -> bool:
    """Whether a missing service or runner fails the test (``HYBRIDFLOW_REQUIRE_SERVICES=1``, CI)."""
    return os.environ.get("HYBRIDFLOW_REQUIRE_SERVICES") == "1"


def unavailable(reason: str):
    """Skips the calling test with ``reason``, or fails it under ``HYBRIDFLOW_REQUIRE_SERVICES=1``."""
    if require_services():
        pytest.fail(f"{reason} (HYBRIDFLOW_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _unavailable(what: str, reason: str):
    unavailable(f"{what} unavailable: {reason}")


def provisioned(locate):
    """``locate()`` (e.g. :func:`~hybridflow.testing.runners.prism_binary`), or :func:`unavailable`
    with its :class:`~hybridflow.testing.runners.RunnerUnavailable` message."""
    from hybridflow.testing.runners import RunnerUnavailable

    try:
        return locate()
    except RunnerUnavailable as exc:
        unavailable(str(exc))


def _started(service):
    try:
        return service.start()
    except ServiceUnavailable as exc:
        _unavailable(service.name, str(exc))
    except ImportError as exc:
        _unavailable(service.name, f"{exc}; install the test extras (`make venv-test`)")


def _service_fixture(name: str, module: str, cls: str):
    """The session fixture ``name``: starts ``hybridflow.testing.services.<module>.<cls>()``, stops it after."""

    def fixture():
        import importlib

        service = _started(getattr(importlib.import_module(f"hybridflow.testing.services.{module}"), cls)())
        try:
            yield service
        finally:
            service.stop()

    return pytest.fixture(scope="session", name=name)(fixture)


kafka_broker = _service_fixture("kafka_broker", "kafka", "KafkaBroker")


@pytest.fixture(scope="session")
def kafka_expansion_service(kafka_broker):
    """Started after the broker, so its Java workers inherit ``$HYBRIDFLOW_KAFKA_SASL_PASSWORD`` (the
    broker's SASL listener password, read there through Kafka's env config provider)."""
    from hybridflow.testing.services.kafka import KafkaExpansionService

    service = _started(KafkaExpansionService())
    try:
        yield service
    finally:
        service.stop()


pubsub_emulator = _service_fixture("pubsub_emulator", "pubsub", "PubSubEmulator")
bigtable_emulator = _service_fixture("bigtable_emulator", "bigtable", "BigtableEmulator")
s3_server = _service_fixture("s3_server", "s3", "S3Server")
postgres_server = _service_fixture("postgres_server", "postgres", "PostgresServer")
hdfs_cluster = _service_fixture("hdfs_cluster", "hdfs", "HdfsCluster")


@pytest.fixture(scope="session")
def gcs_emulator():
    from hybridflow.testing.services.gcs import GcsEmulator, anonymous_gcp

    anonymous_gcp()
    service = _started(GcsEmulator(on_disk=True))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def bigquery_emulator(gcs_emulator):
    from hybridflow.testing.services.bigquery import BigQueryEmulator

    service = _started(BigQueryEmulator(gcs_local_root=gcs_emulator.disk_root))
    try:
        service.redirect_beam()
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def prism_flags():
    """Flags that run a pipeline on the Prism binary ``make tools`` provisioned."""
    from hybridflow.testing.runners import prism_binary

    return ["--runner=PrismRunner", f"--prism_location={provisioned(prism_binary)}"]


# --------------------------------------------------------------------------
# Per-test resources


@pytest.fixture
def unique_name():
    """A fresh lower-case identifier, valid as a topic, bucket, table or dataset name."""
    return f"hf{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka_topic(kafka_broker):
    """``kafka_topic(partitions=1)`` creates a topic with a unique name; all are deleted after the test."""
    from hybridflow.testing.services.kafka import create_topic, delete_topic

    made = []

    def make(partitions: int = 1) -> str:
        name = f"hf-{uuid.uuid4().hex[:10]}"
        made.append(create_topic(kafka_broker.bootstrap, name, partitions))
        return name

    yield make
    for name in made:
        delete_topic(kafka_broker.bootstrap, name)


@pytest.fixture
def pubsub_topic(pubsub_emulator):
    """``pubsub_topic()`` -> ``(topic_path, subscription_path)`` with unique names."""

    def make():
        name = f"hf-{uuid.uuid4().hex[:10]}"
        topic = pubsub_emulator.create_topic(name)
        return topic, pubsub_emulator.create_subscription(topic, f"{name}-sub")

    return make


@pytest.fixture
def bigtable_table(bigtable_emulator):
    """``bigtable_table(column_families)`` -> a new table id; tables are deleted after the test."""
    made = []

    def make(column_families=("d",)) -> str:
        name = f"hf-{uuid.uuid4().hex[:10]}"
        made.append(bigtable_emulator.create_table(name, column_families))
        return name

    yield make
    for table in made:
        try:
            table.delete()
        except Exception:  # noqa: BLE001 - the emulator is in memory; a leftover table is harmless
            pass


@pytest.fixture
def s3_bucket(s3_server, unique_name):
    """A new S3 bucket (name) on the moto server, emptied and deleted after the test."""
    s3_server.create_bucket(unique_name)
    yield unique_name
    client = s3_server.client()
    for obj in client.list_objects_v2(Bucket=unique_name).get("Contents", []):
        client.delete_object(Bucket=unique_name, Key=obj["Key"])
    client.delete_bucket(Bucket=unique_name)


def _named(create, delete):
    """A factory fixture's body: ``create(unique_name, ...)`` per call, ``delete(name)`` of each after."""
    made = []

    def make(*args, **kwargs) -> str:
        made.append(create(f"hf-{uuid.uuid4().hex[:10]}", *args, **kwargs))
        return made[-1]

    yield make
    for name in made:
        delete(name)


@pytest.fixture
def kinesis_stream(s3_server):
    """``kinesis_stream(shards=1)`` creates a stream with a unique name on the moto server; deleted after."""
    client = s3_server.client("kinesis")
    yield from _named(s3_server.create_stream, lambda name: client.delete_stream(StreamName=name))


@pytest.fixture
def dynamodb_table(s3_server):
    """``dynamodb_table(key)`` creates a table keyed by the string attribute ``key``; deleted after."""
    client = s3_server.client("dynamodb")
    yield from _named(s3_server.create_table, lambda name: client.delete_table(TableName=name))


@pytest.fixture
def gcs_bucket(gcs_emulator, unique_name):
    """A new GCS bucket (name) on the emulator, deleted with its objects after the test."""
    gcs_emulator.create_bucket(unique_name)
    yield unique_name
    bucket = gcs_emulator.client().bucket(unique_name)
    for blob in bucket.list_blobs():
        blob.delete()
    bucket.delete()


@pytest.fixture
def bigquery_dataset(bigquery_emulator, unique_name):
    """A new dataset ``project.dataset`` on the emulator, deleted with its tables after the test."""
    full = bigquery_emulator.create_dataset(unique_name)
    yield full
    bigquery_emulator.client().delete_dataset(unique_name, delete_contents=True, not_found_ok=True)


@pytest.fixture
def postgres_schema(postgres_server):
    """A fresh schema in the test database (its name), dropped with its tables after the test."""
    try:
        conn = postgres_server.connect()
    except ImportError as exc:
        _unavailable("postgres", f"{exc}; install the postgres extra")
    schema = f"hf_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
