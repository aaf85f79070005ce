"""hybridflow.testing.runners: where the runners are, and the flags to reach them."""

import pytest

from hybridflow._pins import FLINK_VERSION
from hybridflow.runners_config import load_profile
from hybridflow.testing.runners import (
    FlinkJobServer,
    PrismJobServer,
    RunnerUnavailable,
    flink_job_server_jar,
    prism_binary,
)


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


def test_flags_need_a_started_server():
    with pytest.raises(RunnerUnavailable, match="not started"):
        PrismJobServer().flags()


def test_flink_profile_asks_for_the_provisioned_flink_version():
    options = load_profile("flink").options
    assert options["flink_version"] == FLINK_VERSION
    assert options["flink_master"] == "[local]" and options["environment_type"] == "LOOPBACK"
    assert "--add-opens=java.base/java.time=ALL-UNNAMED" in options["job_server_jvm_properties"]
