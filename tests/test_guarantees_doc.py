"""docs/guarantees.md: every test its lines name exists, and its examples run as written."""

import ast
import glob
import json
import re

import apache_beam as beam

from hybridflow.schemas import Alert
from hybridflow.testing import START, batch_pipeline
from tests._docs import DOCS, example, run_sh
from tests.monitoring.services import WebhookReceiver

PAGE = DOCS / "guarantees.md"
REPO = DOCS.parent
# `tests/io/test_x.py::test_y`, or `io/test_x.py::test_y` (the page says paths are under tests/)
TEST_NAME = re.compile(r"`(?:tests/)?((?:[\w]+/)*test_\w+\.py)::(test_\w+)")


def _section(title: str) -> str:
    text = PAGE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _run(code: str) -> dict:
    namespace = {"__name__": "guarantees_example"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    return namespace


def test_every_test_the_page_names_exists():
    named = TEST_NAME.findall(PAGE.read_text())
    table = TEST_NAME.findall(_section("Per source and sink"))
    assert len(table) > 20 and len(named) > len(table)
    rows = [line for line in _section("Per source and sink").splitlines() if line.startswith("| ") and "---" not in line]
    assert all(TEST_NAME.search(row) for row in rows[1:]), "every row of the table names a test"
    missing = []
    for path, name in set(named):
        tree = ast.parse((REPO / "tests" / path).read_text())
        if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert missing == []


def test_a_local_savepoint_restore_is_one_line(tmp_path):
    text = PAGE.read_text()
    expected = re.search(r"<!-- example: flink-local-savepoint -->\n```sh\n.*?```\n\nprints\n\n```\n(.*?)```", text, re.S)
    done = run_sh(example("guarantees.md", "flink-local-savepoint"), tmp_path, timeout=120)
    assert done.stdout == expected.group(1), done.stdout + done.stderr


def test_reading_a_published_run(tmp_path):
    from hybridflow.pipelines import get_pipeline
    from hybridflow.pipelines.run import run_pipeline

    spec = get_pipeline("fraud")
    out = tmp_path / "out"
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--input=synthetic://transactions?count=2000&cards=50&fraud=0.05&seed=1",
        f"--output={out}"]))
    alerts = _run(example("guarantees.md", "read-published-run"))["alerts_of"](str(out))
    assert len(alerts) == summary.written["alerts"] > 0


def test_a_sinks_dead_letters_go_where_you_say(tmp_path):
    deliver = _run(example("guarantees.md", "sink-dead-letters"))["deliver"]
    alerts = [Alert(f"a{i}", "velocity", f"c{i}", 12.0, 10.0, START + i, START, START + 60, "m") for i in range(3)]
    with WebhookReceiver([(503, {})]) as down:
        with batch_pipeline() as p:
            deliver(p | beam.Create(alerts).with_output_types(Alert), down.url, f"{tmp_path}/undelivered.jsonl")
    dead = [json.loads(line) for path in glob.glob(f"{tmp_path}/undelivered*.jsonl") for line in open(path)]
    assert sorted(json.loads(d["payload"])["alert_id"] for d in dead) == ["a0", "a1", "a2"]
    assert {d["error_type"] for d in dead} == {"webhook_failed"}
