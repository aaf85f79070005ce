"""docs/guarantees.md: its code examples run as written."""

import glob
import json
import pathlib
import re

import apache_beam as beam

from hybridflow.schemas import Alert
from hybridflow.testing import START, batch_pipeline
from tests.monitoring.services import WebhookReceiver

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guarantees.md"


def example(name):
    """The code block marked ``<!-- example: NAME -->``, executed; returns its namespace."""
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no example {name!r} in {DOC}"
    namespace = {"__name__": f"guarantees_{name}"}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    return namespace


def test_reading_a_published_run(tmp_path):
    from hybridflow.pipelines import get_pipeline
    from hybridflow.pipelines.run import run_pipeline

    spec = get_pipeline("fraud")
    out = tmp_path / "out"
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--input=synthetic://transactions?count=2000&cards=50&fraud=0.05&seed=1",
        f"--output={out}"]))
    alerts = example("read-published-run")["alerts_of"](str(out))
    assert len(alerts) == summary.written["alerts"] > 0


def test_a_sinks_dead_letters_go_where_you_say(tmp_path):
    deliver = example("sink-dead-letters")["deliver"]
    alerts = [Alert(f"a{i}", "velocity", f"c{i}", 12.0, 10.0, START + i, START, START + 60, "m") for i in range(3)]
    with WebhookReceiver([(503, {})]) as down:
        with batch_pipeline() as p:
            deliver(p | beam.Create(alerts).with_output_types(Alert), down.url, f"{tmp_path}/undelivered.jsonl")
    dead = [json.loads(line) for path in glob.glob(f"{tmp_path}/undelivered*.jsonl") for line in open(path)]
    assert sorted(json.loads(d["payload"])["alert_id"] for d in dead) == ["a0", "a1", "a2"]
    assert {d["error_type"] for d in dead} == {"webhook_failed"}
