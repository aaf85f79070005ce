"""Connector errors are one line naming the URI and the fix: on the command line (exit codes), and
as MissingExtraError when a connector's optional dependency is not installed."""

import subprocess
import sys

import apache_beam as beam
import pytest

from hybridflow import MissingExtraError, ReadFrom, WriteTo
from hybridflow.testing import batch_pipeline
from hybridflow.testing.services import free_port
from tests.io.edge_records import EDGES, Edge


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "hybridflow", *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr.strip().splitlines()


@pytest.mark.parametrize("args, code, line", [
    (["--mode=batch", f"--input=kafka://127.0.0.1:{free_port()}/t?max_records=1"], 1,
     "hybridflow: error: ConnectorError: kafka://127.0.0.1:{port}/t: cannot reach a Kafka broker"),
    (["--mode=batch", f"--input=postgresql://postgres@127.0.0.1:{free_port()}/db?table=t"], 1,
     "hybridflow: error: ConnectorError: postgresql://postgres@127.0.0.1:{port}/db?table=t: cannot connect"),
    (["--input=pubsub://projects/p/queues/q"], 2, "hybridflow: error: --input=pubsub://projects/p/queues/q: "),
    (["--sink=alert=kafka://h:1/t"], 2, "hybridflow: error: --sink=alert=kafka://h:1/t: this pipeline has no output"),
    (["--mode=batch", "--input=s3://b/*.jsonl?fromat=jsonl"], 2, "hybridflow: error: --input=s3://b/*.jsonl?fromat=jsonl"),
])
def test_cli_prints_one_line(tmp_path, args, code, line):
    returncode, stderr = _cli("run", "fraud", f"--output={tmp_path}", *args)
    assert returncode == code, stderr
    assert len(stderr) == 1, stderr
    port = next((a.split(":")[2].split("/")[0] for a in args if "127.0.0.1:" in a), "")
    assert stderr[0].startswith(line.format(port=port)), stderr


@pytest.mark.parametrize("module, uri, extra", [
    ("psycopg", "postgresql://u@127.0.0.1:1/db?table=t", "postgres"),
    ("kafka", "kafka://127.0.0.1:1/t?max_records=1", "kafka"),
    ("google.cloud.pubsub_v1", "pubsub://projects/hybridflow-test/subscriptions/s", "gcp"),
])
def test_missing_extra_names_the_pip_command(monkeypatch, module, uri, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"]))
    with pytest.raises(MissingExtraError, match=rf"needs the optional module '{module}': pip install 'hybridflow\[{extra}\]'"):
        _ = p | ReadFrom(uri)


def test_missing_extra_on_write(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud.bigtable", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hybridflow\[gcp\]'"):
        _ = batch_pipeline() | beam.Create(EDGES).with_output_types(Edge) | WriteTo("bigtable://p/i/t?key=id")


# Issue 15 item 14: an emulator that is down when the job starts is one line naming its endpoint (Kafka,
# PostgreSQL above; S3, WebHDFS, Kinesis and webhooks in their connectors' tests).
_SYNTHETIC = "--input=synthetic://transactions?count=10"


@pytest.mark.parametrize("variable, value, args, line", [
    ("STORAGE_EMULATOR_HOST", "http://127.0.0.1:{port}", ["--mode=batch", "--input=gs://hybridflow-test/in/*.jsonl"],
     "gs://hybridflow-test/in/*.jsonl: cannot reach the GCS emulator at http://127.0.0.1:{port}"),
    ("PUBSUB_EMULATOR_HOST", "127.0.0.1:{port}",
     ["--mode=streaming", "--input=pubsub://projects/hybridflow-test/subscriptions/s"],
     "pubsub://projects/hybridflow-test/subscriptions/s: cannot reach the Pub/Sub emulator at 127.0.0.1:{port}"),
    ("BIGTABLE_EMULATOR_HOST", "127.0.0.1:{port}",
     ["--mode=batch", _SYNTHETIC, "--sink=aggregates=bigtable://hybridflow-test/i/t?key=card_id&time=window_end"],
     "bigtable://hybridflow-test/i/t: cannot reach the Bigtable emulator at 127.0.0.1:{port}"),
], ids=["gcs", "pubsub", "bigtable"])
def test_emulator_down_at_start_is_one_line_naming_the_endpoint(tmp_path, monkeypatch, variable, value, args, line):
    port = free_port()  # nothing listens there
    monkeypatch.setenv(variable, value.format(port=port))
    returncode, stderr = _cli("run", "fraud", f"--output={tmp_path}", *args)
    assert (returncode, len(stderr)) == (1, 1), stderr
    assert stderr[0].startswith(f"hybridflow: error: ConnectorError: {line.format(port=port)}"), stderr


def test_bigquery_down_at_start_is_one_line_naming_the_endpoint():
    """In process: Beam's BigQuery clients follow no emulator variable, so the test points them at a closed
    port the way the emulator fixture points them at the emulator."""
    from hybridflow.errors import ConnectorError
    from hybridflow.testing.services.bigquery import BigQueryEmulator

    down = BigQueryEmulator()  # never started: nothing listens on its port
    down.redirect_beam()
    try:
        with pytest.raises(ConnectorError, match=rf"^bigquery://hybridflow-test.ds.t: cannot reach BigQuery at "
                                                 rf"http://127.0.0.1:{down.port} \(ConnectionError\); check"):
            _ = (batch_pipeline() | beam.Create(EDGES).with_output_types(Edge)
                 | WriteTo("bigquery://hybridflow-test.ds.t"))
    finally:
        down.restore_beam()
