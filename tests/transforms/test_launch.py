"""LaunchOnAlert: at most one launch per rule and window, a cooldown, the
same decisions bounded and unbounded, and a streaming run whose alerts launch
real batch runs of the fraud pipeline."""

import glob
import json

import pytest

from hybridflow import Alert, Rule, SchemaError, ThresholdAlerts, WindowedAggregate
from hybridflow.io import WriteTo
from hybridflow.launchers import LaunchRecord, LaunchRequest
from hybridflow.launchers.local import SubprocessLauncher
from hybridflow.metrics import query_counters
from hybridflow.schemas import to_json
from hybridflow.testing import (
    START,
    Collect,
    CreateEvents,
    EventStream,
    Watermark,
    batch_pipeline,
    collected,
    streaming_pipeline,
    transactions,
)
from hybridflow.transforms.launch import LaunchOnAlert

# Three transactions of a card in one minute fire the velocity rule (n >= 3).
# A and B in [0, 60): two alerts of one window -> one launch;
# A in [60, 120): inside the 2-minute cooldown after the launch at 60 -> none;
# C in [240, 300): past the cooldown -> a second launch.
BURSTS = {"A": [10, 20, 30, 70, 80, 90], "B": [15, 25, 35], "C": [250, 260, 270]}
TXNS = sorted(transactions([(card, 5.0, t) for card, times in BURSTS.items() for t in times]),
              key=lambda t: t.event_time)


def velocity_alerts(txns):
    windows = txns | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"n": "count"})
    return windows.aggregates | ThresholdAlerts([Rule("velocity", "n", ">=", 3)], key="card_id")


def alert(rule, key, end, start=None, message=None):
    end = START + end
    return Alert(f"{rule}-{key}-{end.micros}", rule, key, 3.0, 3.0, end,
                 None if start is None else START + start, None if start is None else end, message or f"{rule} {key}")


def dry_launcher():
    return SubprocessLauncher("fraud", ["--mode=batch", "--output=out/{launch_id}"], dry_run=True)


def summary(records):
    return sorted(((r.event_time - START).micros // 10**6, r.rule, r.key, r.status) for r in records)


def test_once_per_rule_and_window_then_cooldown_in_batch(tmp_path):
    with batch_pipeline() as p:
        launches = velocity_alerts(p | CreateEvents(TXNS)) | LaunchOnAlert(dry_launcher(), cooldown="2m")
        launches | Collect(tmp_path / "launches")
        launches | WriteTo(f"{tmp_path}/written/launches.jsonl")
    records = collected(tmp_path / "launches")
    assert summary(records) == [(60, "velocity", "A", "dry_run"), (300, "velocity", "C", "dry_run")]
    first = min(records, key=lambda r: r.event_time)
    assert first.launch_id == LaunchRequest.from_alert(
        Alert("x", "velocity", "B", 3.0, 3.0, START + 60, START, START + 60, "")).launch_id  # per rule and window
    assert first.command.endswith(f"hybridflow run fraud --mode=batch --output=out/{first.launch_id}")
    assert first.job == f"out/{first.launch_id}"
    assert first.requested_by == "LaunchOnAlert" and first.backend == "subprocess" and first.pipeline == "fraud"
    assert first.reason.startswith("velocity card_id=A: n=3")
    assert (first.window_start, first.window_end) == (START, START + 60)
    written = [json.loads(line) for path in glob.glob(f"{tmp_path}/written/launches*.jsonl")
               for line in open(path, encoding="utf-8")]
    assert sorted(w["key"] for w in written) == ["A", "C"]
    assert set(written[0]) == set(LaunchRecord._fields)


def test_counters_and_rule_filter(tmp_path):
    alerts = [alert("velocity", "A", 60, 0), alert("velocity", "B", 60, 0), alert("velocity", "A", 120, 60),
              alert("new_country", "Z", 30)]
    p = batch_pipeline()
    p | CreateEvents(alerts) | LaunchOnAlert(dry_launcher(), rules="velocity", cooldown="2m") | Collect(tmp_path)
    counters = query_counters(p.run()).by_name
    assert summary(collected(tmp_path)) == [(60, "velocity", "A", "dry_run")]
    assert counters["launches"] == counters["launches.dry_run"] == counters["launches_requested"] == 1
    assert counters["launches_suppressed"] == 2
    assert counters["launches_suppressed.window"] == 1 and counters["launches_suppressed.cooldown"] == 1
    assert counters["filtered"] == 1  # the new_country alert: not a launching rule


# Alerts out of event-time order, and a late pane of an already launched window.
OUT_OF_ORDER = [
    alert("velocity", "C", 300, 240),
    alert("velocity", "B", 60, 0),
    alert("velocity", "A", 60, 0),
    alert("velocity", "A", 120, 60),
    alert("spend", "A", 100),  # no window: its own event time
    Watermark(START + 400),
    alert("velocity", "D", 60, 0),  # late, same window as the launch at 60
    alert("velocity", "E", 480, 420),
]


@pytest.mark.streaming
def test_streaming_decides_in_event_time_order_like_batch(tmp_path):
    """Launched in arrival order, the alert at 300 would block the one at 60;
    decided when the watermark passes them, the stream launches what the
    batch run launches."""
    with streaming_pipeline() as p:
        p | EventStream(OUT_OF_ORDER) | LaunchOnAlert(dry_launcher(), cooldown="2m") | Collect(tmp_path / "stream")
    with batch_pipeline() as p:
        alerts = [a for a in OUT_OF_ORDER if isinstance(a, Alert)]
        p | CreateEvents(alerts) | LaunchOnAlert(dry_launcher(), cooldown="2m") | Collect(tmp_path / "batch")
    stream = summary(collected(tmp_path / "stream"))
    assert stream == summary(collected(tmp_path / "batch"))
    assert stream == [(60, "velocity", "A", "dry_run"), (100, "spend", "A", "dry_run"),
                      (300, "velocity", "C", "dry_run"), (480, "velocity", "E", "dry_run")]
    ids = [r.launch_id for r in collected(tmp_path / "stream")]
    assert sorted(ids) == sorted(r.launch_id for r in collected(tmp_path / "batch"))


@pytest.mark.streaming
def test_window_memory_ends_after_the_allowed_lateness(tmp_path):
    """With no lateness, a window is forgotten once decided: a late pane of it launches again."""
    items = [alert("velocity", "A", 60, 0), Watermark(START + 400), alert("velocity", "B", 60, 0)]
    with streaming_pipeline() as p:
        p | EventStream(items) | LaunchOnAlert(dry_launcher(), allowed_lateness=0) | Collect(tmp_path)
    assert summary(collected(tmp_path)) == [(60, "velocity", "A", "dry_run"), (60, "velocity", "B", "dry_run")]


def test_bad_configuration_fails_at_construction():
    with pytest.raises(SchemaError, match="must be a hybridflow.launchers.Launcher"):
        LaunchOnAlert("hybridflow run fraud")
    with pytest.raises(SchemaError, match="not a duration"):
        LaunchOnAlert(dry_launcher(), cooldown="soon")
    with pytest.raises(SchemaError, match="takes Alert records"):
        with batch_pipeline() as p:
            p | CreateEvents(TXNS) | LaunchOnAlert(dry_launcher())


@pytest.mark.streaming
def test_streaming_alerts_launch_real_batch_runs(tmp_path):
    """End to end: a stream of transactions; its velocity alerts launch
    `hybridflow run fraud --mode batch` as subprocesses, which write their
    outputs; each launch is recorded with its result."""
    history = tmp_path / "history.jsonl"
    history.write_text("".join(to_json(t) + "\n" for t in TXNS))
    launcher = SubprocessLauncher(
        "fraud",
        ["--mode=batch", "--runner=FnApiRunner", f"--input={history}",
         f"--output={tmp_path}/investigations/{{launch_id}}", "--velocity_threshold=3"],
        timeout=300,
    )
    items = (
        [t for t in TXNS if t.event_time < START + 60]
        + [Watermark(START + 100)]
        + [t for t in TXNS if START + 60 <= t.event_time < START + 240]
        + [Watermark(START + 200)]
        + [t for t in TXNS if t.event_time >= START + 240]
    )
    with streaming_pipeline() as p:
        launches = velocity_alerts(p | EventStream(items)) | "Investigate" >> LaunchOnAlert(launcher, cooldown="2m")
        launches | Collect(tmp_path / "launches")
    records = sorted(collected(tmp_path / "launches"), key=lambda r: r.event_time)
    assert summary(records) == [(60, "velocity", "A", "succeeded"), (300, "velocity", "C", "succeeded")]
    for record in records:
        assert record.exit_code == 0 and record.requested_by == "Investigate"
        assert record.detail.startswith("pipeline fraud (batch) on FnApiRunner: DONE")
        assert record.job == f"{tmp_path}/investigations/{record.launch_id}"
        alerts = [json.loads(line) for path in glob.glob(f"{record.job}/alerts-*.jsonl") for line in open(path)]
        # the launched batch run scored the whole history: both bursts of A and the ones of B and C
        assert sorted({(a["rule"], a["key"]) for a in alerts}) == [("velocity", "A"), ("velocity", "B"),
                                                                   ("velocity", "C")]
        assert glob.glob(f"{record.job}/profiles-*.parquet")
        assert record.launched_at.micros > 0
    assert records[0].launched_at <= records[1].launched_at


@pytest.mark.streaming
def test_readme_event_driven_example_runs(tmp_path):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = re.findall(r"<!-- example: launch-on-alert -->\n```python\n(.*?)```", readme, re.S)
    namespace = {"__name__": "readme_launch_example"}
    exec(compile(block, "README.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


@pytest.mark.prism
@pytest.mark.streaming
def test_streaming_decisions_on_prism(tmp_path, prism_flags):
    """Prism keeps timers in milliseconds: the same launches as batch."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    options = PipelineOptions([*prism_flags, "--streaming", "--environment_type=LOOPBACK"])
    with TestPipeline(options=options) as p:
        p | EventStream(OUT_OF_ORDER) | LaunchOnAlert(dry_launcher(), cooldown="2m") | Collect(tmp_path)
    assert summary(collected(tmp_path)) == [(60, "velocity", "A", "dry_run"), (100, "spend", "A", "dry_run"),
                                            (300, "velocity", "C", "dry_run"), (480, "velocity", "E", "dry_run")]
