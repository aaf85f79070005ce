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
        launches = (velocity_alerts(p | CreateEvents(TXNS)) | LaunchOnAlert(dry_launcher(), cooldown="2m")).launches
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
    (p | CreateEvents(alerts) | LaunchOnAlert(dry_launcher(), rules="velocity", cooldown="2m")).launches | Collect(tmp_path)
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
        (p | EventStream(OUT_OF_ORDER) | LaunchOnAlert(dry_launcher(), cooldown="2m")).launches | Collect(tmp_path / "stream")
    with batch_pipeline() as p:
        alerts = [a for a in OUT_OF_ORDER if isinstance(a, Alert)]
        (p | CreateEvents(alerts) | LaunchOnAlert(dry_launcher(), cooldown="2m")).launches | Collect(tmp_path / "batch")
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
        (p | EventStream(items) | LaunchOnAlert(dry_launcher(), allowed_lateness=0)).launches | Collect(tmp_path)
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
        result = velocity_alerts(p | EventStream(items)) | "Investigate" >> LaunchOnAlert(launcher, cooldown="2m")
        result.launches | Collect(tmp_path / "launches")
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
def test_the_event_driven_example_of_the_orchestration_page_runs(tmp_path):
    from tests._docs import example

    block = example("orchestration.md", "launch-on-alert", "python")
    namespace = {"__name__": "docs_launch_example"}
    exec(compile(block, "docs/orchestration.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


@pytest.mark.prism
@pytest.mark.streaming
def test_streaming_decisions_on_prism(tmp_path, prism_flags):
    """Prism keeps timers in milliseconds: the same launches as batch."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    options = PipelineOptions([*prism_flags, "--streaming", "--environment_type=LOOPBACK"])
    with TestPipeline(options=options) as p:
        (p | EventStream(OUT_OF_ORDER) | LaunchOnAlert(dry_launcher(), cooldown="2m")).launches | Collect(tmp_path)
    assert summary(collected(tmp_path)) == [(60, "velocity", "A", "dry_run"), (100, "spend", "A", "dry_run"),
                                            (300, "velocity", "C", "dry_run"), (480, "velocity", "E", "dry_run")]


# A stand-in for `hybridflow run`: makes the --output directory and a marker
# file in it, as a run writes its outputs; logs every call; fails (exit 3)
# for an output naming "crafted", or the first time for one naming "flaky".
STAND_IN = r"""
import os, sys
output = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--output="))
with open(os.environ["LAUNCH_LOG"], "a") as log:
    log.write(output + "\n")
calls = open(os.environ["LAUNCH_LOG"]).read().splitlines().count(output)
if "crafted" in output or ("flaky" in output and calls == 1):
    sys.exit(3)
os.makedirs(output, exist_ok=True)
open(os.path.join(output, "written"), "w").write("ok")
"""


def stand_in_launcher(base, log):
    import sys

    return SubprocessLauncher("fraud", ["--mode=batch", f"--output={base}/{{key}}"],
                              command=[sys.executable, "-c", STAND_IN], env={"LAUNCH_LOG": str(log)})


def test_record_data_cannot_steer_the_command(tmp_path):
    """A card id of ../../../../tmp/ESCAPED-... and one that looks like a flag
    stay one directory each inside the launcher's output directory."""
    import os
    import uuid

    marker = f"ESCAPED-{uuid.uuid4().hex[:8]}"
    base = tmp_path / "investigations"
    escape = "../" * (len(base.parts) + 2) + f"tmp/{marker}"
    alerts = [alert("velocity", escape, 60, 0), alert("velocity", "--profile=/etc/passwd", 180, 120)]
    with batch_pipeline() as p:
        result = p | CreateEvents(alerts) | LaunchOnAlert(stand_in_launcher(base, tmp_path / "log"), retry_backoff=0)
        result.launches | "Launches" >> Collect(tmp_path / "launches")
        result.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    records = collected(tmp_path / "launches")
    assert sorted(r.status for r in records) == ["succeeded", "succeeded"] and collected(tmp_path / "dead") == []
    assert {r.key for r in records} == {escape, "--profile=/etc/passwd"}  # recorded as they were
    assert not os.path.exists(f"/tmp/{marker}")
    written = sorted(p.relative_to(base).as_posix() for p in base.rglob("written"))
    assert len(written) == 2 and all(w.count("/") == 1 and not w.startswith((".", "-")) for w in written), written
    for record in records:
        assert os.path.dirname(os.path.realpath(record.job)) == str(base)


def test_a_failed_launch_is_retried_then_a_dead_letter_and_leaves_its_window_to_the_next_alert(tmp_path):
    """In one window, a crafted alert first (its launch always fails), then a
    good one: the crafted one is tried 1 + 2 times and becomes a dead letter,
    the good one launches. A flaky launch succeeds on its retry. The same in
    batch and streaming."""
    alerts = [alert("velocity", "crafted", 60, 0), alert("velocity", "good", 60, 0),
              alert("velocity", "flaky", 180, 120)]
    outcomes = {}
    for mode in ("batch", "stream"):
        log = tmp_path / f"{mode}.log"
        launcher = stand_in_launcher(tmp_path / mode, log)
        make = batch_pipeline if mode == "batch" else streaming_pipeline
        events = CreateEvents(alerts) if mode == "batch" else EventStream(alerts)
        p = make()
        result = p | events | LaunchOnAlert(launcher, retries=2, retry_backoff=0)
        result.launches | "Launches" >> Collect(tmp_path / f"{mode}-launches")
        result.dead_letters | "Dead" >> Collect(tmp_path / f"{mode}-dead")
        counters = query_counters(p.run()).by_name
        launches = summary(collected(tmp_path / f"{mode}-launches"))
        dead = collected(tmp_path / f"{mode}-dead")
        calls = log.read_text().splitlines()
        outcomes[mode] = launches
        assert launches == [(60, "velocity", "good", "succeeded"), (180, "velocity", "flaky", "succeeded")]
        (letter,) = dead
        assert (letter.error_type, letter.stage) == ("launch_failed", "LaunchOnAlert")
        assert json.loads(letter.payload)["key"] == "crafted"
        assert "failed after 3 attempt(s), exit code 3" in letter.message and "command: " in letter.message
        assert sum("crafted" in c for c in calls) == 3 and sum("flaky" in c for c in calls) == 2
        if mode == "batch":  # the bundle-based runner reports no metrics of timer callbacks
            assert counters["launch_retries"] == 3 and counters["launches"] == 2 and counters["launches.failed"] == 1
            assert counters["dead_letters.launch_failed"] == 1
    assert outcomes["batch"] == outcomes["stream"]


def test_per_key_launches_once_per_rule_key_and_window_then_cooldown_per_key(tmp_path):
    """The same alerts as above, decided per card: A and B share the first window but each launches."""
    with batch_pipeline() as p:
        launches = (velocity_alerts(p | CreateEvents(TXNS))
                    | LaunchOnAlert(dry_launcher(), cooldown="2m", per_key=True)).launches
        launches | Collect(tmp_path)
    records = collected(tmp_path)
    assert summary(records) == [(60, "velocity", "A", "dry_run"), (60, "velocity", "B", "dry_run"),
                                (300, "velocity", "C", "dry_run")]
    assert len({r.launch_id for r in records}) == 3  # launch ids are per key too
