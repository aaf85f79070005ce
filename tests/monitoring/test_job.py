"""Batch job monitoring from the CLI: --metrics-json, --deadline and its alert,
--alerts-webhook (run in a subprocess, like a scheduler would)."""

import datetime
import glob
import json
import subprocess

import pytest

INPUT = "synthetic://transactions?count=3000&seed=42&population=42&cards=200"


def _lines(pattern):
    return sum(1 for path in glob.glob(pattern) for line in open(path) if line.strip())


def _run(cmd, *flags, timeout=300):
    return subprocess.run([*cmd, "run", "fraud", "--mode", "batch", "--runner=FnApiRunner", f"--input={INPUT}",
                           *flags], capture_output=True, text=True, timeout=timeout)


def test_metrics_json_has_the_job_summary_and_every_metric(hybridflow_cmd, tmp_path):
    out = tmp_path / "out"
    proc = _run(hybridflow_cmd, f"--output={out}", f"--metrics-json={tmp_path}/m/metrics.json", "--deadline=10m")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert (doc["pipeline"], doc["mode"], doc["state"], doc["deadline_exceeded"]) == ("fraud", "batch", "DONE", False)
    assert doc["runner"] == "FnApiRunner" and doc["deadline_seconds"] == 600
    assert doc["start"] < doc["end"] and doc["start"].endswith("Z")
    assert 0 < doc["duration_seconds"] < 300
    counts = doc["counts"]
    assert counts["records_read"] == 3000
    assert counts["dead_letters"] == _lines(f"{out}/dead_letters*.jsonl") > 0
    assert sum(counts["dead_letters_by_reason"].values()) == counts["dead_letters"]
    assert counts["alerts"] == _lines(f"{out}/alerts*.jsonl") > 0
    assert counts["alerts_raised"] == counts["alerts"] + counts["alerts_suppressed"]
    counters = {(c["step"], c["name"]): c["value"] for c in doc["metrics"]["counters"]}
    assert counters[("ReadTransactions/ReadSyntheticTransactions/CountRead", "records_read")] == 3000
    parse_in = counters[("ParseTransactions/Parse", "records_in")]
    assert parse_in == 3000 == counters[("ParseTransactions/Parse", "records_out")] + counters.get(
        ("ParseTransactions/Parse", "dead_letters"), 0)
    lags = {d["step"]: d for d in doc["metrics"]["distributions"] if d["name"] == "event_time_lag_ms"}
    assert lags["ParseTransactions/Parse"]["count"] == counters[("ParseTransactions/Parse", "records_out")]
    assert lags["ParseTransactions/Parse"]["min"] > 0  # the history is of 2026-01-01
    assert doc["outputs"]["alerts"].endswith("alerts-?????-of-?????.jsonl")


def test_a_batch_run_past_its_deadline_alerts_and_exits_3(hybridflow_cmd, tmp_path, webhook):
    receiver = webhook()
    out = tmp_path / "out"
    proc = _run(hybridflow_cmd, f"--output={out}", "--deadline=1s", f"--alerts-webhook={receiver.url}",
                f"--metrics_json={out}/metrics.json")
    assert proc.returncode == 3, proc.stderr[-3000:]
    [line] = [x for x in proc.stderr.splitlines() if "deadline" in x]
    assert line.startswith("hybridflow: deadline exceeded: pipeline fraud (batch) still running")
    assert "past its deadline of 1s" in line
    assert "DEADLINE EXCEEDED" in proc.stdout
    deadline = [(t, h, body) for t, h, body, _ in receiver.requests if body["rule"] == "deadline"]
    [(posted, headers, body)] = deadline
    assert headers["Idempotency-Key"] == body["alert_id"]
    assert body["key"] == "fraud" and body["threshold"] == 1.0 and body["value"] >= 1.0
    # --alerts-webhook also delivered every alert of the pipeline, one POST each
    pipeline_alerts = [body for _, _, body, _ in receiver.requests if body["rule"] != "deadline"]
    written = [json.loads(line) for path in glob.glob(f"{out}/alerts*.jsonl") for line in open(path)]
    assert sorted(a["alert_id"] for a in pipeline_alerts) == sorted(a["alert_id"] for a in written)
    assert len(written) > 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["deadline_exceeded"] is True and doc["state"] == "DONE"
    # fired while the job was still running, not at its end
    assert posted < datetime.datetime.fromisoformat(doc["end"].replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("flag, message", [
    ("--metrics-port=70000", "--metrics_port=70000: use a TCP port"),
    ("--deadline=soon", "--deadline: 'soon' is not a duration"),
    ("--alerts-webhook=ftp://x/y", "--alerts_webhook=ftp://x/y: give an http:// or https:// URL"),
])
def test_bad_monitoring_flags_are_one_line_usage_errors(hybridflow_cmd, flag, message):
    proc = subprocess.run([*hybridflow_cmd, "run", "fraud", flag], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
