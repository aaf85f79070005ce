"""docs/monitoring.md: every example runs as written, against real local
services (Prism, Prometheus's promtool, a Pushgateway, a webhook receiver)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import apache_beam as beam
import pytest

from hybridflow import Alert
from hybridflow.testing import START, batch_pipeline
from hybridflow.transforms.alerts import alert_id
from tests.doc_examples import examples, shell_lines
from tests.monitoring.services import free_port

EXAMPLES = examples("monitoring.md")


def _bash(code, cwd, env=None, timeout=600):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_every_example_is_tested():
    assert set(EXAMPLES) == {"metrics-port", "scrape-config", "batch-monitoring", "post-alerts", "cloud-monitoring"}


@pytest.mark.prism
@pytest.mark.streaming
def test_metrics_port_example_serves_metrics_while_the_stream_runs(prism_flags, tmp_path):
    _, code = EXAMPLES["metrics-port"]
    (command,) = shell_lines(code)
    port = free_port()
    command = command.replace("9464", str(port)) + " " + " ".join(prism_flags) + f" --output={tmp_path}/out"
    result = _bash(command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"hybridflow: serving metrics at http://127.0.0.1:{port}/metrics" in result.stderr
    assert "DONE" in result.stdout


@pytest.mark.services
def test_the_scrape_config_is_valid_for_prometheus(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool (Debian package prometheus) is missing: make system-packages")
    _, code = EXAMPLES["scrape-config"]
    (tmp_path / "prometheus.yml").write_text(code)
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.services
def test_batch_monitoring_example_writes_metrics_pushes_them_and_reports(pushgateway, tmp_path):
    _, code = EXAMPLES["batch-monitoring"]
    code = code.replace("http://127.0.0.1:9091", pushgateway.url)
    result = _bash(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "out/fraud/metrics.json").read_text())
    assert doc["state"] == "DONE" and doc["deadline_seconds"] == 1800 and not doc["deadline_exceeded"]
    assert doc["counts"]["records_read"] == 2000
    pushed = pushgateway.metrics()
    assert re.search(r'hybridflow_pipeline_state\{[^}]*state="DONE"[^}]*\} 1', pushed)
    assert (tmp_path / "out/fraud/report.html").read_text().startswith("<!DOCTYPE html>")


def test_post_alerts_example_delivers_and_keeps_what_it_could_not(webhook, tmp_path):
    _, code = EXAMPLES["post-alerts"]
    namespace = {}
    exec(compile(code, "docs/monitoring.md", "exec"), namespace)
    receiver = webhook()
    alerts_in = [Alert(alert_id("r", "c1", START + i), "r", "c1", 1.0, 0.5, START + i, None, None, f"alert {i}")
                 for i in range(3)]
    p = batch_pipeline()
    namespace["deliver"](p | beam.Create(alerts_in).with_output_types(Alert), receiver.url,
                         str(tmp_path / "undelivered.jsonl"))
    p.run().wait_until_finish()
    assert sorted(b["alert_id"] for b in receiver.accepted()) == sorted(a.alert_id for a in alerts_in)


def test_cloud_monitoring_example_installs_the_shipped_files(tmp_path):
    _, code = EXAMPLES["cloud-monitoring"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gcloud.log"
    fake = bin_dir / "gcloud"  # a stand-in that records its arguments and checks the file exists
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nfor a; do case "$a" in --*-from-file=*) '
                    'test -s "${a#*=}" || exit 3;; esac; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = _bash(code, tmp_path, env={"PATH": f"{bin_dir}{os.pathsep}{os.path.dirname(sys.executable)}"
                                                f"{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[:3] for c in calls] == [["monitoring", "dashboards", "create"],
                                            ["alpha", "monitoring", "policies"], ["alpha", "monitoring", "policies"]]
    for call in calls:
        path = call.split("-from-file=")[1]
        json.loads(open(path).read())
