"""Kafka: ``kafka://host:port[,host:port]/topic``, thin over Beam's cross-language Kafka IO.

Beam's ``ReadFromKafka`` / ``WriteToKafka`` are Java transforms expanded by a
Java expansion service; ``--kafka_expansion_service=HOST:PORT`` (or
``expansion_service=``) names it, otherwise Beam uses its own, which downloads
a shaded jar and runs the Java worker in Docker. Where neither is possible
(this project's test machines), ``make tools-services`` provisions a classpath
from Beam Java 2.73 modules and
:class:`~hybridflow.testing.services.KafkaExpansionService` (``python -m
hybridflow.testing.services kafka-expansion``) runs it with a local Java
worker pool; Prism and the FnApiRunner then execute the Java transforms there.
The bundle-based DirectRunner cannot run cross-language transforms.

Reading emits each message's value (``bytes``), typed by
:class:`~hybridflow.transforms.ParseRecords`. Event time (``event_time=``):

- ``kafka`` (default): the record's Kafka timestamp (``CreateTime``); the
  watermark follows it and, once a partition is caught up, advances with the
  clock. Producers set the timestamp to the event time (this module's writer
  does);
- ``log_append``: the broker's append time;
- ``processing``: the time of reading.

ParseRecords with ``timestamp_field=`` then stamps each record with its own
event-time field (for records whose Kafka timestamp is not their event time).

Unbounded unless ``max_records`` / ``max_seconds`` bound the read. Writing
sends each record as JSON with key ``key_field`` (UTF-8 text; empty without
one) and Kafka timestamp ``timestamp_field`` (milliseconds), through Beam's
``kafka_write_with_headers`` transform (Beam Java 2.73+; named by its URN,
as the pinned Python SDK's ``WriteToKafka`` predates it).

Reads and writes check the broker and topic up front with kafka-python
(``pip install hybridflow[kafka]``).

Secured brokers (Azure Event Hubs' Kafka endpoint, Confluent Cloud, MSK):
``security_protocol=SASL_SSL&sasl_mechanism=PLAIN&sasl_username=...&sasl_password_env=VAR``
(:class:`KafkaSecurity`). The password is never in the URI: ``VAR`` names an
environment variable. The Java side gets the reference, not the value
(``${env:VAR}`` through Kafka's ``EnvVarConfigProvider``), so the secret is
read from the environment of the JVM that connects and is not stored in the
pipeline; the up-front check reads it from the launching process's
environment.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

import apache_beam as beam
from apache_beam.transforms.external import ExternalTransform, NamedTupleBasedPayloadBuilder
from apache_beam.typehints.row_type import RowTypeConstraint
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import ConnectorError, InvalidOptionError, InvalidUriError, require
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.options import ConnectorOptions
from hybridflow.io.uri import EndpointUri, accepts
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of, to_json

__all__ = ["ReadFromKafka", "WriteToKafka", "KafkaSecurity", "EVENT_TIMES"]

EVENT_TIMES = {"kafka": "CreateTime", "log_append": "LogAppendTime", "processing": "ProcessingTime"}
_WRITE_WITH_HEADERS_URN = "beam:transform:org.apache.beam:kafka_write_with_headers:v1"
_KAFKA_ROW = RowTypeConstraint.from_fields([("key", bytes), ("value", bytes), ("timestamp", int)])
_KAFKA_ROW_NO_TIME = RowTypeConstraint.from_fields([("key", bytes), ("value", bytes)])


def _uri(bootstrap: str, topics: Sequence[str]) -> str:
    return f"kafka://{bootstrap}/{','.join(topics)}"


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@dataclasses.dataclass(frozen=True)
class KafkaSecurity:
    """How to authenticate to a broker: TLS and SASL settings, secrets by environment variable.

    Args:
      security_protocol: ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
      sasl_mechanism: ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``.
      sasl_username: the user name (Event Hubs: ``$ConnectionString``).
      sasl_username_env: or the environment variable holding it.
      sasl_password_env: the environment variable holding the password
        (Event Hubs: the namespace's connection string).
      ssl_cafile: a PEM file of the CA certificates to trust (default: the system's).

    Example (Azure Event Hubs)::

        KafkaSecurity("SASL_SSL", "PLAIN", sasl_username="$ConnectionString",
                      sasl_password_env="EVENTHUBS_CONNECTION_STRING")
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: Optional[str] = None
    sasl_username: Optional[str] = None
    sasl_username_env: Optional[str] = None
    sasl_password_env: Optional[str] = None
    ssl_cafile: Optional[str] = None

    def __post_init__(self):
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise InvalidUriError(f"security_protocol={self.security_protocol!r}; use one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl:
            if self.sasl_mechanism not in _LOGIN_MODULES:
                raise InvalidUriError(f"security_protocol={self.security_protocol} needs sasl_mechanism= one of "
                                      f"{', '.join(_LOGIN_MODULES)} (Event Hubs: PLAIN), got {self.sasl_mechanism!r}")
            if not (self.sasl_username or self.sasl_username_env) or not self.sasl_password_env:
                raise InvalidUriError(f"security_protocol={self.security_protocol} needs sasl_username= (or "
                                      "sasl_username_env=) and sasl_password_env=VAR (the variable holding the password)")
        elif self.sasl_mechanism or self.sasl_password_env:
            raise InvalidUriError(f"sasl_* settings need security_protocol=SASL_SSL or SASL_PLAINTEXT, "
                                  f"not {self.security_protocol}")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def java_config(self) -> dict[str, str]:
        """Consumer/producer properties for Beam's Java Kafka IO; secrets as ``${env:VAR}`` references."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        config = {"security.protocol": self.security_protocol}
        if self.ssl_cafile:
            config.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ssl_cafile})
        if self.sasl:
            user = self.sasl_username if self.sasl_username_env is None else f"${{env:{self.sasl_username_env}}}"
            config.update({
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.jaas.config": f'{_LOGIN_MODULES[self.sasl_mechanism]} required username="{user}" '
                                    f'password="${{env:{self.sasl_password_env}}}";',
                "config.providers": "env",
                "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            })
        return config

    def python_config(self) -> dict[str, Any]:
        """kafka-python client arguments, with the secrets read from the environment now."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
        if self.sasl:
            config.update({
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username if self.sasl_username_env is None
                else _environment(self.sasl_username_env),
                "sasl_plain_password": _environment(self.sasl_password_env),
            })
        return config


def _environment(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise InvalidOptionError(f"environment variable {name} is not set; export it with the Kafka credential "
                                 "(the URI names the variable, never the secret)")
    return value


PLAINTEXT = KafkaSecurity()


def _check_topics(uri: str, bootstrap: str, topics: Sequence[str], security: KafkaSecurity = PLAINTEXT) -> None:
    """One-line ConnectorError if the broker is unreachable, refuses the credentials or a topic is missing."""
    require("kafka", f"{uri} (the broker check)", "kafka")
    if not any(accepts(server) for server in bootstrap.split(",")):
        raise ConnectorError(f"{uri}: cannot reach a Kafka broker at {bootstrap}; check host:port and that the "
                             "broker runs")
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=5000,
                                 **security.python_config())
    except KafkaError as exc:
        if security.security_protocol != "PLAINTEXT" or not isinstance(exc, (KafkaTimeoutError, KafkaConnectionError)):
            # the port answered: a failed TLS or SASL handshake (the broker drops the connection)
            raise ConnectorError(f"{uri}: the broker at {bootstrap} refused the connection ({type(exc).__name__}); "
                                 "check security_protocol, sasl_mechanism and the credentials' variables") from exc
        raise ConnectorError(f"{uri}: cannot reach a Kafka broker at {bootstrap} ({type(exc).__name__}); "
                             "check host:port and that the broker runs") from exc
    try:
        existing = set(admin.list_topics())
    except KafkaError as exc:
        raise ConnectorError(f"{uri}: the broker at {bootstrap} did not answer ({type(exc).__name__})") from exc
    finally:
        admin.close()
    missing = [t for t in topics if t not in existing]
    if missing:
        raise ConnectorError(
            f"{uri}: topic {missing[0]!r} does not exist; create it (kafka-topics.sh --create --topic {missing[0]}) "
            "or fix the URI"
        )


def _check_start_time(uri: str, bootstrap: str, topics: Sequence[str], start_time: Timestamp,
                      security: KafkaSecurity = PLAINTEXT) -> None:
    """One-line ConnectorError if a partition has no record at or after ``start_time``: Beam's
    Kafka read finds each partition's start with offsets-for-times and fails the job on one
    that has none (an IllegalStateException in ``ReadFromKafkaDoFn``'s initial restriction,
    seen on Prism; docs/hybrid.md)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None,
                                 request_timeout_ms=10000, **security.python_config())
    except KafkaError as exc:
        raise ConnectorError(f"{uri}: cannot reach the broker at {bootstrap} ({type(exc).__name__})") from exc
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        found = consumer.offsets_for_times({tp: start_time.micros // 1000 for tp in partitions})
    except KafkaError as exc:
        raise ConnectorError(f"{uri}: the broker at {bootstrap} did not answer ({type(exc).__name__})") from exc
    finally:
        consumer.close()
    empty = [f"{tp.topic}-{tp.partition}" for tp in partitions if found.get(tp) is None]
    if empty:
        raise ConnectorError(
            f"{uri}: partition {empty[0]} has no record at or after {start_time.to_rfc3339()} "
            f"({len(empty)} of {len(partitions)} partitions), and Beam's Kafka read cannot start there; "
            "pick an earlier start time (the boundary), or start once every partition has a record past it"
        )


def _expansion_service(pipeline, explicit: Optional[str]) -> Optional[str]:
    return explicit or pipeline.options.view_as(ConnectorOptions).kafka_expansion_service


def _expand_external(uri: str, address: Optional[str], apply):
    """Applies a cross-language transform; an expansion failure becomes one line naming the fix."""
    try:
        return apply()
    except Exception as exc:  # noqa: BLE001 - re-raised as ConnectorError with the cause attached
        where = address or "Beam's default expansion service"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConnectorError(
            f"{uri}: Beam's Kafka IO could not be expanded by {where} ({first}); start an expansion service "
            "(`make tools-services`, then `python -m hybridflow.testing.services kafka-expansion`) and pass "
            "--kafka_expansion_service=HOST:PORT"
        ) from exc


class ReadFromKafka(beam.PTransform):
    """Reads message values (``bytes``) of Kafka topics.

    Args:
      bootstrap_servers: ``host:port[,host:port]``.
      topics: topic names.
      group_id: consumer group; offsets are committed when bundles finalize.
      event_time: ``kafka`` (record timestamps), ``log_append`` or
        ``processing`` (see the module doc).
      start: ``earliest`` or ``latest`` offsets when the group has none.
      max_records, max_seconds: bound the read (tests, backfills).
      start_time: start each partition at its first record whose Kafka
        timestamp is at or after this time (Kafka's offsets-for-times; Beam's
        ``start_read_time``); ``start`` and the group's offsets then do not apply.
        With ``validate``, a partition without such a record is a
        ConnectorError when the pipeline is built (Beam's read would fail the job).
      expansion_service: ``host:port`` of the Java expansion service
        (default: ``--kafka_expansion_service``, then Beam's own).
      validate: check the broker and topics at construction.
      security: TLS / SASL settings (:class:`KafkaSecurity`); default plaintext.

    Example::

        values = p | ReadFromKafka("broker:9092", ["transactions"], group_id="fraud")
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: Optional[str] = None,
        event_time: str = "kafka",
        start: str = "earliest",
        max_records: Optional[int] = None,
        max_seconds: Optional[int] = None,
        expansion_service: Optional[str] = None,
        validate: bool = True,
        security: KafkaSecurity = PLAINTEXT,
        start_time: Optional[Timestamp] = None,
    ):
        super().__init__()
        self._security = security
        self._start_time = start_time
        self._topics = list(topics)
        self._uri = _uri(bootstrap_servers, self._topics)
        if not self._topics or not all(self._topics):
            raise InvalidUriError(f"{self._uri}: name a topic: kafka://HOST:PORT/TOPIC")
        if event_time not in EVENT_TIMES:
            raise InvalidUriError(f"{self._uri}: event_time={event_time!r}; use one of {', '.join(EVENT_TIMES)}")
        if start not in ("earliest", "latest"):
            raise InvalidUriError(f"{self._uri}: start={start!r}; use earliest or latest")
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._event_time = event_time
        self._start = start
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._expansion_service = expansion_service
        self._validate = validate

    def expand(self, pbegin):
        from apache_beam.io import kafka

        if self._validate:
            _check_topics(self._uri, self._bootstrap, self._topics, self._security)
            if self._start_time is not None:
                _check_start_time(self._uri, self._bootstrap, self._topics, self._start_time, self._security)
        config = {"bootstrap.servers": self._bootstrap, "auto.offset.reset": self._start,
                  **self._security.java_config()}
        if self._group_id:
            config["group.id"] = self._group_id
        address = _expansion_service(pbegin.pipeline, self._expansion_service)
        read = kafka.ReadFromKafka(
            consumer_config=config,
            topics=self._topics,
            max_num_records=self._max_records,
            max_read_time=self._max_seconds,
            start_read_time=None if self._start_time is None else self._start_time.micros // 1000,
            commit_offset_in_finalize=bool(self._group_id),
            timestamp_policy=EVENT_TIMES[self._event_time],
            expansion_service=address,
        )
        messages = _expand_external(self._uri, address, lambda: pbegin | "Read" >> read)
        return (
            messages
            | "Values" >> beam.Map(lambda kv: kv[1]).with_output_types(bytes)
            | "CountRead" >> CountElements("records_read")
        )


class _ToKafkaRow(beam.DoFn):
    def __init__(self, key_field: Optional[str], timestamp_field: Optional[str]):
        self._key_field = key_field
        self._timestamp_field = timestamp_field

    def process(self, record):
        key = b"" if self._key_field is None else str(getattr(record, self._key_field)).encode("utf-8")
        value = to_json(record).encode("utf-8")
        if self._timestamp_field is None:
            yield beam.Row(key=key, value=value)
        else:
            time: Timestamp = getattr(record, self._timestamp_field)
            yield beam.Row(key=key, value=value, timestamp=time.micros // 1000)


class WriteToKafka(beam.PTransform):
    """Writes each record as JSON to a Kafka topic.

    Args:
      bootstrap_servers: ``host:port[,host:port]``.
      topic: the topic.
      key_field: the record field used as message key (partitioning).
      timestamp_field: a Timestamp field used as the Kafka timestamp
        (default ``event_time`` when the records have it; ``None``: the
        producer's clock).
      record_type: the record type if the input's element type is not one.
      expansion_service: see :class:`ReadFromKafka`.
      validate: check the broker and topic at construction.
      security: TLS / SASL settings (:class:`KafkaSecurity`); default plaintext.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        key_field: Optional[str] = None,
        timestamp_field: Optional[str] = "event_time",
        record_type: Any = None,
        expansion_service: Optional[str] = None,
        validate: bool = True,
        security: KafkaSecurity = PLAINTEXT,
    ):
        super().__init__()
        self._security = security
        self._uri = _uri(bootstrap_servers, [topic])
        if not topic:
            raise InvalidUriError(f"{self._uri}: name a topic: kafka://HOST:PORT/TOPIC")
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._key_field = key_field
        self._timestamp_field = timestamp_field
        self._record_type = record_type
        self._expansion_service = expansion_service
        self._validate = validate

    def expand(self, pcoll):
        from apache_beam.io import kafka

        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        fields = {f.name: f for f in fields_of(record_type)}
        if self._key_field is not None and self._key_field not in fields:
            raise InvalidUriError(f"{self._uri}: key_field {self._key_field!r} is not a field ({', '.join(fields)})")
        timestamp_field = self._timestamp_field
        if timestamp_field is not None:
            field = fields.get(timestamp_field)
            if field is None and timestamp_field == "event_time":
                timestamp_field = None  # the default, for records without an event time
            elif field is None or field.type is not Timestamp or field.optional or field.is_list:
                raise InvalidUriError(
                    f"{self._uri}: timestamp_field {timestamp_field!r} must be a required Timestamp field"
                )
        if self._validate:
            _check_topics(self._uri, self._bootstrap, [self._topic], self._security)
        address = _expansion_service(pcoll.pipeline, self._expansion_service)
        rows = (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "ToKafka" >> beam.ParDo(_ToKafkaRow(self._key_field, timestamp_field)).with_output_types(
                _KAFKA_ROW if timestamp_field else _KAFKA_ROW_NO_TIME
            )
        )
        # Beam's Python WriteToKafka gains with_headers= (rows with a timestamp)
        # only after the pinned SDK; the Java side (Beam Java 2.73+, see
        # tools/kafka/pom.xml) has the transform, so it is named by its URN.
        serializer = kafka.WriteToKafka.byte_array_serializer
        write = ExternalTransform(
            _WRITE_WITH_HEADERS_URN,
            NamedTupleBasedPayloadBuilder(
                kafka.WriteToKafkaSchema(
                    producer_config={"bootstrap.servers": self._bootstrap, **self._security.java_config()},
                    topic=self._topic,
                    key_serializer=serializer,
                    value_serializer=serializer,
                )
            ),
            address,
        )
        return _expand_external(self._uri, address, lambda: rows | "Write" >> write)


# --------------------------------------------------------------------------
# URIs: kafka://host:port[,host:port]/topic[,topic]?...


def _parts(endpoint: EndpointUri) -> tuple[str, list[str]]:
    topics = [t for t in endpoint.path.split(",") if t]
    if not topics or "/" in endpoint.path:
        raise InvalidUriError(f"{endpoint.redacted!r}: expected kafka://HOST:PORT[,HOST:PORT]/TOPIC")
    return endpoint.netloc, topics


_SECURITY_PARAMS = tuple(f.name for f in dataclasses.fields(KafkaSecurity))


def _security(endpoint: EndpointUri) -> KafkaSecurity:
    if "sasl_password" in endpoint.params:
        raise InvalidUriError(
            "kafka:// URI: never put a password in a URI; export it (e.g. EVENTHUBS_CONNECTION_STRING) and pass "
            "sasl_password_env=THAT_VARIABLE"
        )
    values = {name: endpoint.param(name) for name in _SECURITY_PARAMS if endpoint.param(name)}
    try:
        return KafkaSecurity(**values)
    except InvalidUriError as exc:
        raise InvalidUriError(f"{endpoint.location!r}: {exc}") from None


def reader(endpoint: EndpointUri, bounded: Optional[bool], start_time: Optional[Timestamp] = None) -> beam.PTransform:
    security = _security(endpoint)
    endpoint.check_params(("group_id", "event_time", "start", "max_records", "max_seconds", "validate",
                           *_SECURITY_PARAMS), "kafka:// sources")
    bootstrap, topics = _parts(endpoint)
    max_records, max_seconds = endpoint.int_param("max_records"), endpoint.int_param("max_seconds")
    if bounded and max_records is None and max_seconds is None:
        raise InvalidUriError(
            f"{endpoint.redacted!r}: Kafka is unbounded; add max_records=N or max_seconds=S for a bounded read"
        )
    return ReadFromKafka(
        bootstrap, topics,
        group_id=endpoint.param("group_id"),
        event_time=endpoint.param("event_time", "kafka"),
        start=endpoint.param("start", "earliest"),
        max_records=max_records,
        max_seconds=max_seconds,
        validate=endpoint.bool_param("validate", True),
        security=security,
        start_time=start_time,
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    security = _security(endpoint)
    endpoint.check_params(("key_field", "timestamp_field", "validate", *_SECURITY_PARAMS), "kafka:// sinks")
    bootstrap, topics = _parts(endpoint)
    if len(topics) != 1:
        raise InvalidUriError(f"{endpoint.redacted!r}: write to one topic")
    timestamp_field = endpoint.param("timestamp_field", "event_time")
    return WriteToKafka(
        bootstrap, topics[0],
        key_field=endpoint.param("key_field"),
        timestamp_field=None if timestamp_field in ("", "none") else timestamp_field,
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
        security=security,
    )
