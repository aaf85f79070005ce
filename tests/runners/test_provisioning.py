"""`make tools` puts Prism and the Flink and Spark job servers exactly where
Beam looks, and a second run does nothing."""

import os
import subprocess
import zipfile

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability import prism_runner
from apache_beam.runners.portability.flink_runner import FlinkJarJobServer
from apache_beam.runners.portability.spark_runner import SparkJarJobServer
from apache_beam.utils.subprocess_server import JavaJarServer

from hybridflow._pins import BEAM_VERSION, FLINK_VERSION, PRISM_VERSION, SPARK_VERSION
from hybridflow.runners_config import load_profile
from hybridflow.testing.runners import flink_job_server_jar, prism_binary, spark_job_server_jar
from hybridflow.testing.services.pytest_plugin import provisioned
from tests.conftest import REPO


@pytest.mark.prism
def test_prism_is_where_beam_looks():
    binary = provisioned(prism_binary)
    server = prism_runner.PrismJobServer(PipelineOptions([]))
    # Beam's own lookup: the release URL's file name in its cache (nothing is fetched here)
    cached = os.path.join(server.BIN_CACHE, os.path.basename(server._resolve_source_path()))
    assert cached == f"{binary}.zip"
    with zipfile.ZipFile(cached) as z:  # the release asset's layout: one member, the binary
        assert z.namelist() == [binary.name]
    assert os.access(binary, os.X_OK)
    assert f"v{BEAM_VERSION}" in binary.name
    # the Prism inside is PRISM_VERSION (see hybridflow/_pins.py)
    assert binary.with_name(binary.name + ".version").read_text().strip() == PRISM_VERSION


@pytest.mark.parametrize("profile, locate, server, jar_name, main_class, inside", [
    pytest.param("flink", flink_job_server_jar, FlinkJarJobServer,
                 f"beam-runners-flink-{FLINK_VERSION}-job-server-{BEAM_VERSION}.jar",
                 "org.apache.beam.runners.flink.FlinkJobServerDriver", "org/apache/flink/", marks=pytest.mark.flink),
    pytest.param("spark", spark_job_server_jar, SparkJarJobServer,
                 f"beam-runners-spark-{SPARK_VERSION}-job-server-{BEAM_VERSION}.jar",
                 "org.apache.beam.runners.spark.SparkJobServerDriver", "org/apache/spark/", marks=pytest.mark.spark),
])
def test_job_server_is_where_beam_looks(profile, locate, server, jar_name, main_class, inside):
    jar = provisioned(locate)
    options = PipelineOptions(load_profile(profile).flags())
    url = server(options).path_to_jar()  # the Maven URL Beam would fetch
    assert os.path.join(JavaJarServer.JAR_CACHE, os.path.basename(url)) == str(jar)
    assert jar.name == jar_name
    with zipfile.ZipFile(jar) as z:
        manifest = z.read("META-INF/MANIFEST.MF").decode()
        assert any(name.startswith(inside) for name in z.namelist())  # the engine itself is inside
    assert f"Main-Class: {main_class}" in manifest


@pytest.mark.prism
@pytest.mark.flink
@pytest.mark.spark
def test_make_tools_again_does_nothing():
    """A second ``make tools`` rebuilds nothing: the runners say so and their files keep their mtime
    (the behaviour, not this machine's speed, is what is checked)."""
    artifacts = [provisioned(prism_binary), provisioned(flink_job_server_jar), provisioned(spark_job_server_jar)]
    artifacts.append(artifacts[0].with_name(artifacts[0].name + ".zip"))
    before = {path: path.stat().st_mtime_ns for path in artifacts}
    done = subprocess.run(["make", "--no-print-directory", "tools"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # prism, flink, spark, the k8s CRDs, airflow (and the services' own lines)
    for what in ("prism", "flink job server", "spark job server", "flink kubernetes operator", "airflow"):
        assert any(line.startswith(what) and "already provisioned" in line for line in done.stdout.splitlines()), (
            what, done.stdout)
    assert "go install" not in done.stdout and "mvn package" not in done.stdout, done.stdout
    assert {path: path.stat().st_mtime_ns for path in artifacts} == before
