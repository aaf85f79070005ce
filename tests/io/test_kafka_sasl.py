"""kafka:// with SASL (Azure Event Hubs' Kafka endpoint is SASL_SSL + PLAIN): against the local broker's
SASL_PLAINTEXT listener, credentials by environment variable, the secret never in the pipeline."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidOptionError, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.testing import Collect, batch_pipeline, collected
from hybridflow.testing.services.kafka import KafkaBroker, consume
from tests.io.edge_records import EDGES, Edge
from tests.io.test_kafka import PARSED, kafka_pipeline

pytestmark = pytest.mark.timeout(300)

SASL = f"security_protocol=SASL_PLAINTEXT&sasl_mechanism=PLAIN&sasl_username={KafkaBroker.sasl_username}"


def test_round_trip_through_the_sasl_listener_with_the_password_from_the_environment(
        tmp_path, kafka_broker, kafka_expansion_service, kafka_topic):
    topic = kafka_topic()
    uri = f"kafka://{kafka_broker.sasl_bootstrap}/{topic}?{SASL}&sasl_password_env={KafkaBroker.SASL_PASSWORD_ENV}"
    with kafka_pipeline(f"--kafka_expansion_service={kafka_expansion_service.address}") as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"{uri}&key_field=id")
        # the secret is read by the JVM that connects: the pipeline holds only the variable's name
        graph = p.to_runner_api().SerializeToString()
        assert kafka_broker.sasl_password.encode() not in graph
        assert f"${{env:{KafkaBroker.SASL_PASSWORD_ENV}}}".encode() in graph
    assert sorted(m.key for m in consume(kafka_broker.bootstrap, topic, len(EDGES))) == sorted(
        e.id.encode() for e in EDGES)
    with kafka_pipeline(f"--kafka_expansion_service={kafka_expansion_service.address}") as p:
        parsed = p | ReadFrom(f"{uri}&max_records={len(EDGES)}&max_seconds=120") | ParseRecords(
            Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
    assert sorted(collected(tmp_path / "records")) == sorted(PARSED)


def test_wrong_password_is_one_line(kafka_broker, kafka_topic, monkeypatch):
    topic = kafka_topic()
    monkeypatch.setenv("HF_WRONG_PASSWORD", "not-the-password")
    with pytest.raises(ConnectorError, match=rf"^kafka://{kafka_broker.sasl_bootstrap}/{topic}: the broker at "
                                             rf"{kafka_broker.sasl_bootstrap} refused the connection .*credentials"):
        _ = batch_pipeline() | ReadFrom(
            f"kafka://{kafka_broker.sasl_bootstrap}/{topic}?{SASL}&sasl_password_env=HF_WRONG_PASSWORD&max_records=1")


def test_secrets_never_go_in_the_uri_and_a_missing_variable_is_named(monkeypatch):
    with pytest.raises(InvalidUriError, match="never put a password in a URI; .*sasl_password_env="):
        ReadFrom(f"kafka://h:9093/t?{SASL}&sasl_password=hunter2&max_records=1")
    with pytest.raises(InvalidUriError, match="needs sasl_username= .* and sasl_password_env=VAR"):
        ReadFrom("kafka://h:9093/t?security_protocol=SASL_SSL&sasl_mechanism=PLAIN&max_records=1")
    with pytest.raises(InvalidUriError, match="sasl_mechanism= one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"):
        ReadFrom("kafka://h:9093/t?security_protocol=SASL_SSL&sasl_mechanism=OAUTHBEARER&max_records=1")
    monkeypatch.delenv("HF_UNSET", raising=False)
    from hybridflow.io.kafka import KafkaSecurity

    with pytest.raises(InvalidOptionError, match="environment variable HF_UNSET is not set"):
        KafkaSecurity("SASL_SSL", "PLAIN", sasl_username="$ConnectionString", sasl_password_env="HF_UNSET").python_config()


def test_event_hubs_settings_become_the_java_client_properties():
    from hybridflow.io.kafka import KafkaSecurity

    config = KafkaSecurity("SASL_SSL", "PLAIN", sasl_username="$ConnectionString",
                           sasl_password_env="EVENTHUBS_CONNECTION_STRING").java_config()
    assert config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                            'username="$ConnectionString" password="${env:EVENTHUBS_CONNECTION_STRING}";',
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
    }
