"""A batch run pushes its final metrics to a real Prometheus Pushgateway
(Debian's prometheus-pushgateway): the gateway then serves the counts the run
wrote to its metrics file, every declared family included."""

import json
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.services import free_port


def _samples(text):
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance")))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.services
def test_a_batch_run_pushes_its_final_metrics(pushgateway, hybridflow_cmd, tmp_path):
    result = subprocess.run([
        *hybridflow_cmd, "run", "fraud", "--mode=batch", "--runner=FnApiRunner",
        "--input=synthetic://transactions?count=300&seed=42&population=42&cards=20", f"--output={tmp_path}/out",
        f"--metrics-pushgateway={pushgateway.url}", f"--metrics-json={tmp_path}/metrics.json",
    ], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "metrics not pushed" not in result.stderr
    doc = json.loads((tmp_path / "metrics.json").read_text())
    samples = _samples(pushgateway.metrics())
    # what the run counted, as the gateway serves it (grouped under job=hybridflow, pipeline=fraud)
    read = sum(v for (name, labels), v in samples.items()
               if name == "hybridflow_records_total" and ("outcome", "read") in labels and ("pipeline", "fraud") in labels)
    assert read == doc["counts"]["records_read"] == 300
    dead = sum(v for (name, labels), v in samples.items() if name == "hybridflow_dead_letters_total")
    assert dead == doc["counts"]["dead_letters"]
    state = {dict(labels)["state"]: v for (name, labels), v in samples.items() if name == "hybridflow_pipeline_state"}
    assert state["DONE"] == 1 and state["RUNNING"] == 0
    # families this run never incremented are pushed at 0, not left out
    assert samples[("hybridflow_webhook_retries_total", (("pipeline", "fraud"), ("step", "")))] == 0
    assert samples[("hybridflow_pipeline_deadline_exceeded", (("pipeline", "fraud"),))] == 0


def test_a_failed_push_is_one_line_and_the_run_still_succeeds(hybridflow_cmd, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run([
        *hybridflow_cmd, "run", "fraud", "--mode=batch", "--runner=FnApiRunner",
        "--input=synthetic://transactions?count=50&seed=42", f"--output={tmp_path}/out", f"--metrics_pushgateway={url}",
    ], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "metrics not pushed" in line]
    assert len(lines) == 1 and f"--metrics_pushgateway={url}: the push failed" in lines[0]
