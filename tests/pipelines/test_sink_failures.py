"""Sink failures never vanish: records a sink could not write join the run's
``dead_letters`` output, counted, and are not counted as written. Against a
real local HTTP server (webhooks) and the BigQuery emulator (rejected rows)."""

import json
import subprocess
import typing

import apache_beam as beam
import pytest

from hybridflow.errors import InvalidOptionError
from hybridflow.pipelines import PipelineSpec, get_pipeline
from hybridflow.pipelines.outputs import published_files, read_success
from hybridflow.pipelines.run import construct, run_pipeline
from hybridflow.schemas import DeadLetter, register
from hybridflow.testing import batch_pipeline
from tests.monitoring.services import WebhookReceiver


def lines(paths):
    return [json.loads(line) for path in paths for line in open(path, encoding="utf-8") if line.strip()]


def output_line(summary: str, name: str) -> str:
    """The run summary's line of output ``name``: ``    alerts        LOCATION (N records)``."""
    return next(line for line in summary.splitlines() if line.startswith(f"    {name} "))


def run_fraud_alerts_to(hybridflow_cmd, out, sink):
    """`hybridflow run fraud` with the alerts written to ``sink`` only."""
    return subprocess.run(
        [*hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner",
         "--input=synthetic://transactions?count=2000&cards=50&fraud=0.05&seed=1", f"--output={out}",
         f"--sink=alerts={sink}"],
        capture_output=True, text=True, timeout=600,
    )


def test_undelivered_alerts_are_dead_letters_and_counts_match_the_files(hybridflow_cmd, tmp_path):
    """The reproduction of issue 15 item 1: a webhook that fails every alert."""
    out = tmp_path / "out"
    with WebhookReceiver([(500, {})]) as down:
        result = run_fraud_alerts_to(hybridflow_cmd, out, f"webhook+{down.url}?webhook_retries=0")
        posted = len(down.requests)
    assert result.returncode == 0, result.stderr
    success = read_success(str(out))
    dead = lines(published_files(str(out), "dead_letters"))
    undelivered = [d for d in dead if d["error_type"] == "webhook_failed"]
    alerts = success["counts"]["alerts"]
    assert alerts > 0 and posted == alerts and len(undelivered) == alerts  # every alert is somewhere
    assert all(d["stage"] == "WriteToWebhook" and "HTTP 500" in d["message"] for d in undelivered)
    assert len(dead) == success["counts"]["dead_letters"]  # the summary's count is the file's
    assert f"dead letters     {len(dead)} " in result.stdout
    assert output_line(result.stdout, "alerts").endswith(" (0 records)")  # none was written
    assert success["outputs"]["dead_letters"]["records"] == len(dead)


def test_delivered_alerts_are_counted_as_written(hybridflow_cmd, tmp_path):
    out = tmp_path / "out"
    with WebhookReceiver([(200, {})]) as up:
        result = run_fraud_alerts_to(hybridflow_cmd, out, f"webhook+{up.url}")
        accepted = len(up.accepted())
    assert result.returncode == 0, result.stderr
    success = read_success(str(out))
    assert accepted == success["counts"]["alerts"] > 0
    assert output_line(result.stdout, "alerts").endswith(f" ({accepted} records)")
    assert not [d for d in lines(published_files(str(out), "dead_letters")) if d["error_type"].startswith("webhook")]


@register
class Reading(typing.NamedTuple):
    sensor: str
    value: str


READINGS = [Reading("a", "12"), Reading("b", "not a number"), Reading("c", "7"), Reading("d", "x")]


def _readings_spec():
    def build(p, options):
        return {
            "readings": p | "Readings" >> beam.Create(READINGS).with_output_types(Reading),
            "dead_letters": p | "NoDeadLetters" >> beam.Create([]).with_output_types(DeadLetter),
        }

    def sinks(options):
        from hybridflow.options import HybridflowOptions

        out = options.view_as(HybridflowOptions).output
        return {"readings": f"{out}/readings.jsonl", "dead_letters": f"{out}/dead_letters.jsonl"}

    return PipelineSpec("readings", "test: readings to a sink", build, sinks, modes=("batch",))


@pytest.mark.services
def test_rows_bigquery_rejects_are_dead_letters_not_written(tmp_path, bigquery_emulator, gcs_emulator,
                                                             bigquery_dataset):
    from google.cloud import bigquery

    table = f"{bigquery_dataset}.readings"
    # the table exists with value as INT64: BigQuery rejects the rows whose value is not a number
    bigquery_emulator.client().create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("sensor", "STRING"), bigquery.SchemaField("value", "INT64")]))
    spec = _readings_spec()
    options = spec.options([
        "--runner=FnApiRunner", f"--output={tmp_path / 'out'}", f"--project={bigquery_emulator.project}",
        f"--temp_location=gs://{gcs_emulator.default_bucket}/tmp",
        f"--sink=readings=bigquery://{table}?method=streaming_inserts",
    ])
    summary = run_pipeline(spec, options)
    dead = lines(published_files(str(tmp_path / "out"), "dead_letters"))
    assert sorted(json.loads(d["payload"])["sensor"] for d in dead) == ["b", "d"]
    assert {d["error_type"] for d in dead} == {"bigquery_rejected"} and all(d["stage"] == "WriteToBigQuery" for d in dead)
    rows = sorted((r["sensor"], r["value"]) for r in bigquery_emulator.client().list_rows(table))
    assert rows == [("a", 12), ("c", 7)]
    assert summary.written == {"readings": 2, "dead_letters": 2}  # rejected rows are not written
    assert summary.records_written == 4 and summary.dead_letters == 2


def test_a_dead_letter_sink_that_can_fail_per_record_is_refused():
    spec = get_pipeline("fraud")
    options = spec.options(["--runner=FnApiRunner", "--sink=dead_letters=https://example.com/hook"])
    with pytest.raises(InvalidOptionError, match="--sink=dead_letters=https://example.com/hook: this sink can fail"):
        construct(batch_pipeline(), spec, options)
