"""Acceptance: a streaming run of ``hybridflow run ... --metrics-port`` on Prism
is scraped by a real Prometheus (Debian package) every second; PromQL over its
HTTP API gives the counts the run processed, and the dashboard's queries run."""

import datetime
import glob
import json
import re
import subprocess

import pytest

from tests.monitoring.services import free_port
from tests.monitoring.test_exporter import _dashboard_queries

COUNT, RATE = 400, 20  # a 20 s stream of event time, the first 2 s already due at launch


# panels over counters that stay absent in this run (see the end of the test): none, since every
# declared metric is served from the start at 0
NO_DATA_HERE = []


def _lines(pattern):
    return sum(1 for path in glob.glob(pattern) for line in open(path) if line.strip())


def _value(result):
    [series] = result
    return float(series["value"][1])


@pytest.mark.services
@pytest.mark.prism
@pytest.mark.streaming
def test_prometheus_scrapes_a_streaming_run_and_the_counts_match(prism_flags, prometheus, hybridflow_cmd, tmp_path):
    port = free_port()
    prom = prometheus([f"127.0.0.1:{port}"])
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = (f"synthetic://transactions?rate={RATE}&count={COUNT}&start={start}&seed=7&population=42&cards=3"
              "&late=0.2&late_delay=600")
    out = tmp_path / "out"
    proc = subprocess.run([
        *hybridflow_cmd, "run", "fraud", "--profile=prism", *prism_flags, "--mode=streaming",
        f"--input={source}", "--history=synthetic://transactions?count=300&seed=42&population=42&cards=3",
        f"--output={out}", "--window=fixed:2s", "--allowed_lateness=0", "--cooldown=0",
        f"--metrics-port={port}", "--metrics_address=127.0.0.1", "--metrics_interval=1s", "--metrics_linger=3s",
        f"--metrics-json={tmp_path}/metrics.json",
    ], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"serving metrics at http://127.0.0.1:{port}/metrics" in proc.stderr

    # the last successful scrape: the job's final numbers (the target is gone now)
    [up] = prom.samples('up{job="hybridflow"}')
    last = max(float(t) for t, v in up["values"] if v == "1")
    assert _value(prom.query('hybridflow_pipeline_state{state="DONE"}', at=last)) == 1

    # scraped while running: the job was RUNNING and had read records already
    running = {t for s in prom.samples('hybridflow_pipeline_state{state="RUNNING"}') for t, v in s["values"] if v == "1"}
    [reads] = prom.samples('hybridflow_records_total{outcome="read", step=~"ReadTransactions/.*"}')
    live = [float(v) for t, v in reads["values"] if t in running]
    assert live and max(live) > 0, "no scrape saw records while the job ran"

    # every counter of the run, as Prometheus has it, equals the run's own final count
    doc = json.loads((tmp_path / "metrics.json").read_text())
    names = {"records_read": "read", "records_written": "written", "records_in": "in", "records_out": "out"}
    checked = 0
    for counter in doc["metrics"]["counters"]:
        step, name, value = counter["step"], counter["name"], counter["value"]
        if name in names:
            query = f'hybridflow_records_total{{step="{step}", outcome="{names[name]}"}}'
        elif name.startswith("dead_letters."):
            query = f'hybridflow_dead_letters_total{{step="{step}", reason="{name.split(".", 1)[1]}"}}'
        elif name == "late_records":
            query = f'hybridflow_late_records_total{{step="{step}"}}'
        elif name.startswith("alerts."):
            query = f'hybridflow_alerts_total{{step="{step}", rule="{name.split(".", 1)[1]}"}}'
        else:
            continue
        assert _value(prom.query(query, at=last)) == value, query
        checked += 1
    assert checked >= 20

    # ... and what the run processed: the source's records, parsed or dead-lettered, written files
    def total(selector):
        return _value(prom.query(f"sum({selector})", at=last))

    assert total('hybridflow_records_total{outcome="read", step=~"ReadTransactions/.*"}') == COUNT
    parse = 'step="ParseTransactions/Parse"'
    assert total(f'hybridflow_records_total{{{parse}, outcome="in"}}') == COUNT
    assert total(f'hybridflow_records_total{{{parse}, outcome="out"}}') + total(
        f'hybridflow_dead_letters_total{{{parse}}}') == COUNT
    assert total('hybridflow_records_total{outcome="written", step=~"WriteAlerts/.*"}') == _lines(
        f"{out}/alerts*.jsonl") > 0
    assert total('hybridflow_dead_letters_total') == _lines(f"{out}/dead_letters*.jsonl") == doc["counts"][
        "dead_letters"]
    # late=0.2, 10 minutes behind: late once the watermark has moved past them, which on a loaded machine
    # may not have happened yet when they arrive (then there are none, and no series: `or vector(0)`)
    late_files = _lines(f"{out}/late*.jsonl")
    assert doc["counts"]["late_records"] == late_files == _value(
        prom.query("sum(hybridflow_late_records_total) or vector(0)", at=last))

    # the dashboard's queries are valid PromQL, and those over series this run has return data
    def promql(expr):
        return re.sub(r"\$__rate_interval", "1m", expr.replace("$pipeline", "fraud"))

    no_data = []
    for title, expr in _dashboard_queries():
        result = prom.query(promql(expr), at=last)  # asserts the query is accepted
        selectors = re.findall(r"\bhybridflow_[a-z0-9_]+(?:\{[^}]*\})?", expr)
        if all(prom.query(promql(selector), at=last) for selector in selectors):
            assert result, f"panel {title!r}: {expr} returned nothing"
        else:
            no_data.append(expr)
    # counters this run never increments (no webhook, no lookup cache, no deadline, cooldown 0) are
    # served at 0 too: every panel has data
    assert sorted(re.search(r"hybridflow_[a-z_]+", expr).group() for expr in no_data) == NO_DATA_HERE
