"""hybridflow.testing.runners: where the runners are, and the flags to reach them."""

import pathlib

import pytest

from hybridflow._pins import FLINK_VERSION
from hybridflow.runners_config import load_profile
from hybridflow.testing.runners import (
    FlinkJobServer,
    PrismJobServer,
    RunnerUnavailable,
    SparkJobServer,
    flink_job_server_jar,
    prism_binary,
    spark_job_server_jar,
)
from hybridflow.testing.services.pytest_plugin import provisioned


def test_missing_runners_say_how_to_provision_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RunnerUnavailable, match=r"Prism .* is not provisioned .*: run `make tools`"):
        prism_binary()
    with pytest.raises(RunnerUnavailable, match=r"Flink 1.19 job server .* not provisioned .*: run `make tools`"):
        flink_job_server_jar()
    with pytest.raises(RunnerUnavailable, match="make tools"):
        PrismJobServer().start()
    with pytest.raises(RunnerUnavailable, match="make tools"):
        FlinkJobServer().start()
    with pytest.raises(RunnerUnavailable, match=r"Spark 3 job server .* not provisioned .*: run `make tools`"):
        spark_job_server_jar()
    with pytest.raises(RunnerUnavailable, match="make tools"):
        SparkJobServer().start()


def test_flags_come_from_the_profiles():
    flink = FlinkJobServer()
    flink.port, flink.process = 1234, object()  # as if started
    flags = flink.flags("--streaming")
    assert flags[:1] == ["--runner=FlinkRunner"]
    assert f"--flink_version={FLINK_VERSION}" in flags and "--flink_master=[local]" in flags
    assert flags[-3:] == ["--job_endpoint=localhost:1234", "--environment_type=LOOPBACK", "--streaming"]
    assert not any(f.startswith("--job_server_jvm_properties") for f in flags)

    prism = PrismJobServer()
    prism.port, prism.process = 99, object()
    assert prism.flags() == [
        "--runner=PrismRunner", "--job_server_timeout=31536000", "--experiments=prism_disable_sdf_split",
        "--job_endpoint=localhost:99", "--environment_type=LOOPBACK",
    ]


def test_spark_flags_come_from_its_profile():
    spark = SparkJobServer()
    spark.port, spark.process = 4321, object()
    flags = spark.flags()
    assert flags[:1] == ["--runner=SparkRunner"] and "--spark_master_url=local[2]" in flags
    assert flags[-2:] == ["--job_endpoint=localhost:4321", "--environment_type=LOOPBACK"]
    assert not any(f.startswith("--job_server_jvm_properties") for f in flags)
    spark.workdir = pathlib.Path("/tmp/w")
    provisioned(spark_job_server_jar)
    command = spark.command()
    assert "--spark-master-url=local[2]" in command and "--job-port=4321" in command
    assert "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED" in command  # the profile's JVM flags


def test_flags_need_a_started_server():
    with pytest.raises(RunnerUnavailable, match="not started"):
        PrismJobServer().flags()


def test_flink_profile_asks_for_the_provisioned_flink_version():
    options = load_profile("flink").options
    assert options["flink_version"] == FLINK_VERSION
    assert options["flink_master"] == "[local]" and options["environment_type"] == "LOOPBACK"
    assert "--add-opens=java.base/java.time=ALL-UNNAMED" in options["job_server_jvm_properties"]
