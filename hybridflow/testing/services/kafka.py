"""A single-node Kafka broker (KRaft) and the Java side of Beam's Kafka IO, as local processes.

:class:`KafkaBroker` runs ``kafka.Kafka`` from the jars of
``tools/services/kafka-broker/pom.xml`` with a generated KRaft config on two
free loopback ports (clients and controller), formatted fresh in a private
directory. :class:`KafkaExpansionService` runs Beam's Java expansion service
and a Java SDK worker pool from the classpath of ``tools/kafka/pom.xml``: the
expansion service stamps every Java transform with an ``EXTERNAL``
environment pointing at the pool, so Prism and the FnApiRunner run the Java
half of ``ReadFromKafka`` / ``WriteToKafka`` in that JVM instead of Docker.

The helpers :func:`create_topic`, :func:`produce` and :func:`consume` use
kafka-python (the ``kafka`` extra).
"""

from __future__ import annotations

import base64
import json
import pathlib
import shutil
import subprocess
import time
import uuid
from typing import Iterable, Optional

from hybridflow.testing.services._process import (
    ServiceProcess,
    ServiceUnavailable,
    free_port,
    tcp_open,
    tools_home,
    wait_for,
)

__all__ = ["KafkaBroker", "KafkaExpansionService", "create_topic", "produce", "consume"]

# log.retention.ms=-1: tests write historical event times as Kafka timestamps (e.g. 2026-01-01);
# with the default 7-day time retention the broker's periodic check deleted those messages mid-test.
_BROKER_CONFIG = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport},SASL_PLAINTEXT://127.0.0.1:{sport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}="{password}";
log.dirs={logdir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.segment.bytes=1048576
log.index.size.max.bytes=1048576
log.cleaner.enable=false
log.retention.ms=-1
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
"""

_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""

# One small JVM: broker and controller in one process.
_BROKER_JVM = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:MaxDirectMemorySize=128m",
               "-XX:TieredStopAtLevel=1", "-Xss512k", "-Djava.awt.headless=true"]
_BEAM_JVM = ["-Xms64m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
             "--add-opens=java.base/java.util=ALL-UNNAMED"]


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceUnavailable("Kafka needs Java 17 (`java` is not on PATH): install a JDK")
    return java


def _classpath(lib: pathlib.Path, what: str) -> str:
    if not (lib / ".complete").exists():
        raise ServiceUnavailable(f"{what} is not provisioned ({lib} missing): run `make tools-services`")
    return str(lib / "*")


class KafkaBroker(ServiceProcess):
    """A throwaway KRaft broker on ``127.0.0.1:<free port>``; ``bootstrap`` is its address.

    A second listener, ``sasl_bootstrap``, takes SASL_PLAINTEXT connections
    with the PLAIN mechanism (as Azure Event Hubs' Kafka endpoint does, minus
    TLS) for the user ``sasl_username``; its password is generated per broker
    and exported as ``$HYBRIDFLOW_KAFKA_SASL_PASSWORD`` while the broker runs
    (``kafka://...?sasl_password_env=HYBRIDFLOW_KAFKA_SASL_PASSWORD``).
    """

    name = "kafka"
    start_timeout = 90.0
    sasl_username = "hybridflow"
    SASL_PASSWORD_ENV = "HYBRIDFLOW_KAFKA_SASL_PASSWORD"

    def __init__(self, lib: Optional[pathlib.Path] = None):
        super().__init__()
        self.lib = lib or tools_home() / "services" / "kafka-broker" / "lib"
        self.port = free_port()
        self.controller_port = free_port()
        self.sasl_port = free_port()
        self.sasl_password = uuid.uuid4().hex

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def env(self):
        return {self.SASL_PASSWORD_ENV: self.sasl_password}

    def _start(self) -> None:
        classpath = _classpath(self.lib, "the Kafka broker")
        java = _java()
        props = self.workdir / "server.properties"
        props.write_text(_BROKER_CONFIG.format(port=self.port, cport=self.controller_port, sport=self.sasl_port,
                                               user=self.sasl_username, password=self.sasl_password,
                                               logdir=self.workdir / "data"))
        (self.workdir / "log4j2.properties").write_text(_LOG4J)
        base = [java, *_BROKER_JVM, f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.workdir}", "-cp", classpath]
        if not (self.workdir / "data" / "meta.properties").exists():  # a restart() keeps its formatted storage
            cluster_id = "-"
            while cluster_id.startswith("-"):  # a leading "-" reads as an option to StorageTool
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # Kafka 4.x still formats storage with the Scala kafka.tools.StorageTool.
            formatted = subprocess.run([*base, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c",
                                        str(props), "--ignore-formatted"], capture_output=True, text=True)
            if formatted.returncode != 0:
                raise ServiceUnavailable(f"Kafka storage format failed: {formatted.stdout}{formatted.stderr}")
        proc = self._spawn([*base, "kafka.Kafka", str(props)], "broker.log")
        wait_for(self._answers_metadata, f"Kafka broker on {self.bootstrap}", self.start_timeout, proc,
                 self.log_path("broker.log"))

    def _answers_metadata(self) -> bool:
        # An open port is not enough: wait until the broker answers a metadata request.
        if not tcp_open(self.port):
            return False
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
        return True


class KafkaExpansionService(ServiceProcess):
    """Beam's Java expansion service for Kafka IO plus a Java SDK worker pool, no Docker.

    ``address`` is what ``ReadFromKafka`` / ``WriteToKafka`` take as
    ``expansion_service`` (hybridflow's ``kafka://`` connector reads it from
    ``--kafka_expansion_service``). Both JVMs bind to all interfaces (Beam's
    mains take only a port); the addresses handed out are loopback ones.
    """

    name = "kafka-expansion"
    start_timeout = 120.0

    def __init__(self, lib: Optional[pathlib.Path] = None):
        super().__init__()
        self.lib = lib or tools_home() / "kafka-expansion-service" / "lib"
        self.port = free_port()
        self.worker_port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self) -> None:
        classpath = _classpath(self.lib, "the Kafka expansion service")
        java = _java()
        import os

        worker_env = dict(os.environ, PIPELINE_OPTIONS=json.dumps(
            {"options": {"defaultEnvironmentConfig": f"127.0.0.1:{self.worker_port}"}}))
        worker = self._spawn([java, *_BEAM_JVM, "-cp", classpath, "org.apache.beam.fn.harness.ExternalWorkerService"],
                             "worker.log", env=worker_env)
        expansion = self._spawn(
            [java, *_BEAM_JVM, "-cp", classpath, "org.apache.beam.sdk.expansion.service.ExpansionService",
             str(self.port), "--defaultEnvironmentType=EXTERNAL",
             f"--defaultEnvironmentConfig=127.0.0.1:{self.worker_port}"],
            "expansion.log")
        wait_for(lambda: tcp_open(self.worker_port), "Java SDK worker pool", self.start_timeout, worker,
                 self.log_path("worker.log"))
        wait_for(lambda: tcp_open(self.port), f"Kafka expansion service on {self.address}", self.start_timeout,
                 expansion, self.log_path("expansion.log"))


# --------------------------------------------------------------------------
# Client helpers (kafka-python)


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> str:
    """Creates ``topic`` (replication 1) and waits until its leader is known; returns it."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 20
        while True:
            partitions = admin.describe_topics([topic])[0].get("partitions") or []
            if partitions and all(p.get("leader_id", -1) >= 0 for p in partitions):
                return topic
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"topic {topic} has no leader after 20s")
            time.sleep(0.1)
    finally:
        admin.close()


def delete_topic(bootstrap: str, topic: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.delete_topics([topic])
    except Exception:  # noqa: BLE001 - cleanup of a test topic that may be gone already
        pass
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[Optional[bytes], bytes, Optional[int]]]) -> int:
    """Sends ``(key, value, timestamp_ms)`` messages and waits until the broker has every one
    (an undelivered message raises); returns how many."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        sent = [producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
                for key, value, timestamp_ms in messages]
        producer.flush(30)
        for future in sent:
            future.get(timeout=30)
    finally:
        producer.close()
    return len(sent)


def consume(bootstrap: str, topic: str, count: int = 0, timeout: float = 60.0) -> list:
    """Every message of ``topic`` from the start, as kafka-python ``ConsumerRecord`` objects
    (``key``, ``value``, ``timestamp`` ...): reads up to the end offsets, and waits up to
    ``timeout`` seconds for at least ``count`` messages to be there."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        partitions = None
        while not partitions:
            found = consumer.partitions_for_topic(topic)
            partitions = [TopicPartition(topic, p) for p in sorted(found or ())]
            if not partitions:
                if time.monotonic() > deadline:
                    return out
                time.sleep(0.1)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while True:
            end = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                for batch in consumer.poll(timeout_ms=500).values():
                    out.extend(batch)
            if len(out) >= count or time.monotonic() > deadline:
                return out
            time.sleep(0.2)
    finally:
        consumer.close()
