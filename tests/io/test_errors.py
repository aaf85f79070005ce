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
