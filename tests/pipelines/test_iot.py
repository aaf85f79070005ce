"""The iot pipeline: its generator, its results against an independent
plain-Python computation, batch = streaming, and the CLI end to end."""

import collections
import json
import math
import pathlib
import shlex
import subprocess

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from hybridflow import get_pipeline
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.iot import MODEL_LIMITS, ModelLimits, ScoreReadings, SensorReading, SyntheticReadings
from hybridflow.pipelines.run import run_pipeline
from hybridflow.schemas import to_timestamp
from hybridflow.testing import Collect, CreateEvents, EventStream, batch_pipeline, collected, streaming_pipeline

# 8 machines, a reading each every 8 s; an hour, the wear (6x the realistic pace) from minute 10
INPUT = dict(count=3600, rate=1.0, seed=2, population=5, machines=8, drifting=0.25, drift_after=600.0, wear=6.0,
             malformed=0.03, late=0.0)
HISTORY = dict(count=2400, rate=1.0, seed=1, population=5, machines=8, drifting=0.0, malformed=0.03, late=0.0)


def uri(params):
    return "synthetic://readings?" + "&".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in params.items())


def read_jsonl(directory, name):
    rows = []
    for path in sorted(pathlib.Path(directory).glob(f"{name}*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_the_generator_is_deterministic_and_history_and_live_share_the_fleet():
    config = SyntheticReadings(**INPUT)
    assert list(generate_records(config, 0, 400)) == list(generate_records(config, 0, 400))
    assert list(generate_records(config, 100, 200)) == list(generate_records(config, 0, 400))[100:200]
    history = SyntheticReadings(**HISTORY)
    for k in range(8):
        live, past = config.machine(k), history.machine(k)
        assert (live.machine_id, live.model, live.temperature) == (past.machine_id, past.model, past.temperature)
        assert past.drift_per_hour == 0.0
    assert sum(config.machine(k).drift_per_hour > 0 for k in range(8)) >= 1


# --------------------------------------------------------------------------
# An independent computation: the generator's lines, parsed and scored in plain Python


def _parse(line):
    """A valid reading as a dict, or None for what must be a dead letter."""
    try:
        row = json.loads(line)
        event_time = to_timestamp(row["event_time"])
        valid = (isinstance(row["machine_id"], str) and all(
            isinstance(row[f], (int, float)) and not isinstance(row[f], bool) for f in ("temperature", "vibration"))
            and -60 <= row["temperature"] <= 250 and 0 <= row["vibration"] <= 100)
    except (ValueError, KeyError):
        return None
    return {**row, "micros": event_time.micros} if valid else None


def _readings(params):
    config = SyntheticReadings(**params)
    parsed = [_parse(line) for line in generate_records(config, 0, params["count"])]
    bad = sum(config.malformation(i, 5) is not None for i in range(params["count"]))
    return [r for r in parsed if r is not None], bad


def _expected(window=600, period=120, z_threshold=3.0, min_history=30, cooldown=1800):
    live, bad_live = _readings(INPUT)
    history, bad_history = _readings(HISTORY)
    baselines = {}
    for machine in sorted({r["machine_id"] for r in history}):
        rows = [r for r in history if r["machine_id"] == machine]
        baselines[machine] = {
            "readings": len(rows),
            **{f"{s}_mean": math.fsum(r[s] for r in rows) / len(rows) for s in ("temperature", "vibration")},
            **{f"{s}_stddev": _stddev([r[s] for r in rows]) for s in ("temperature", "vibration")},
        }
    limits = {m.model: m for m in MODEL_LIMITS}
    alerts = []  # (rule, machine, event time µs)
    for r in live:
        for sensor in ("temperature", "vibration"):
            if r[sensor] > getattr(limits[r["model"]], f"max_{sensor}"):
                alerts.append((f"over_{sensor}_limit", r["machine_id"], r["micros"]))
    windows = collections.defaultdict(list)
    size, step = window * 10**6, period * 10**6
    for r in live:
        last = r["micros"] - r["micros"] % step
        for start in range(last, r["micros"] - size, -step):
            windows[(r["machine_id"], start)].append(r)
    for (machine, start), rows in windows.items():
        base = baselines.get(machine)
        if base is None or base["readings"] < min_history:
            continue
        for sensor, floor in (("temperature", 0.5), ("vibration", 0.05)):
            mean = math.fsum(r[sensor] for r in rows) / len(rows)
            if (mean - base[f"{sensor}_mean"]) / max(base[f"{sensor}_stddev"], floor) >= z_threshold:
                alerts.append((f"{sensor}_drift", machine, start + size))
    kept = {}
    for rule, machine, micros in sorted(alerts):  # the cooldown keeps the earliest per period
        kept.setdefault((rule, machine, micros // (cooldown * 10**6)), (rule, machine, micros))
    return baselines, sorted(kept.values()), bad_live + bad_history


def _stddev(values):
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _micros(text):
    return to_timestamp(text).micros


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("iot") / "out"
    spec = get_pipeline("iot")
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--mode=batch", f"--input={uri(INPUT)}", f"--history={uri(HISTORY)}",
        f"--output={out}", "--maintenance=dry_run",
    ]))
    return out, summary


def test_baselines_alerts_and_dead_letters_equal_an_independent_computation(batch_run):
    out, summary = batch_run
    baselines, alerts, bad = _expected()
    got = {r["machine_id"]: r for r in pq.read_table(sorted(out.glob("baselines*.parquet"))).to_pylist()}
    assert sorted(got) == sorted(baselines)
    for machine, expected in baselines.items():
        assert got[machine]["readings"] == expected["readings"]
        for name, value in expected.items():
            assert got[machine][name] == pytest.approx(value, rel=1e-12), (machine, name)
    produced = sorted((a["rule"], a["key"], _micros(a["event_time"])) for a in read_jsonl(out, "alerts"))
    assert produced == alerts
    assert {rule for rule, _, _ in alerts} >= {"over_temperature_limit", "temperature_drift", "vibration_drift"}
    dead = read_jsonl(out, "dead_letters")
    assert len(dead) == bad == summary.dead_letters > 0
    assert summary.records_read == INPUT["count"] + HISTORY["count"]


def test_each_machine_and_rule_launches_one_maintenance_job_per_cooldown(batch_run):
    out, _ = batch_run
    alerts = read_jsonl(out, "alerts")
    launches = read_jsonl(out, "launches")
    assert launches and {l["status"] for l in launches} == {"dry_run"}
    expected = []
    for rule, key in sorted({(a["rule"], a["key"]) for a in alerts}):  # by hand: 1 h cooldown per rule and machine
        last = None
        for a in sorted((a for a in alerts if (a["rule"], a["key"]) == (rule, key)),
                        key=lambda a: (_micros(a["event_time"]), a["key"], a["alert_id"])):
            if last is None or _micros(a["event_time"]) >= last + 3600 * 10**6:
                last = _micros(a["event_time"])
                expected.append((rule, a["key"], a["alert_id"]))
    assert sorted((l["rule"], l["key"], l["alert_id"]) for l in launches) == sorted(expected)
    command = launches[0]["command"]
    assert f"--machine={launches[0]['key']}" in command and "--maintenance=none" in command


# --------------------------------------------------------------------------
# batch = streaming


def _records(params):
    config = SyntheticReadings(**{**params, "malformed": 0.0, "disorder": 0.0})
    return [SensorReading(**{**row, "event_time": to_timestamp(row["event_time"])})
            for row in map(json.loads, generate_records(config, 0, params["count"]))]


@pytest.mark.streaming
def test_batch_and_streaming_scoring_give_the_same_alerts_and_windows(tmp_path):
    # 4 machines, a reading each every 20 s for 13 minutes; two wear fast from minute 3
    live = _records(dict(count=160, rate=0.2, seed=3, population=5, machines=4, drifting=0.5, drift_after=200.0,
                         wear=40.0, late=0.0))
    baselines, _, _ = _expected()
    rows = [beam.Row(machine_id=m, **{k: v for k, v in b.items()}) for m, b in sorted(baselines.items())]

    def score(pipeline, source, out):
        with pipeline as p:
            table = p | "Baselines" >> beam.Create(rows)
            limits = p | "Limits" >> beam.Create(MODEL_LIMITS).with_output_types(ModelLimits)
            scored = p | source | ScoreReadings(table, limits, window="sliding:5m/1m", cooldown=0)
            scored["alerts"] | "SaveAlerts" >> Collect(out / "alerts")
            scored["aggregates"] | "SaveWindows" >> Collect(out / "windows")
        alerts = sorted((a.rule, a.key, a.event_time, round(a.value, 9)) for a in collected(out / "alerts"))
        windows = sorted((w.machine_id, w.window_start, w.readings, w.temperature_max) for w in collected(out / "windows"))
        return alerts, windows

    batch = score(batch_pipeline(), CreateEvents(live), tmp_path / "batch")
    stream = score(streaming_pipeline(), EventStream(live), tmp_path / "stream")
    assert batch == stream
    assert {rule for rule, *_ in batch[0]} >= {"over_temperature_limit", "temperature_drift"}


# --------------------------------------------------------------------------
# The CLI, as a user runs it


def test_the_docs_batch_commands_and_the_maintenance_job_they_record(hybridflow_cmd, tmp_path):
    """docs/iot.md's commands as a user runs them (generate, run, report), then
    the first recorded maintenance job, run as the launcher would have."""
    from tests._docs import example, run_sh

    done = run_sh(example("iot.md", "iot-batch", "sh"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "output" / "iot-files"
    assert (out / "_SUCCESS").exists() and read_jsonl(out, "alerts")
    assert "Machines by peak temperature" in (tmp_path / "iot-report.html").read_text()
    launch = read_jsonl(out, "launches")[0]
    command = shlex.split(launch["command"])
    assert command[command.index("run") + 1] == "iot" and f"--machine={launch['key']}" in command
    job = subprocess.run([*hybridflow_cmd, *command[command.index("run"):], "--runner=FnApiRunner"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, job.stderr[-3000:]
    windows = read_jsonl(tmp_path / launch["job"], "aggregates")
    assert windows and {w["machine_id"] for w in windows} == {launch["key"]}


def test_describe_names_the_generator(hybridflow_cmd):
    result = subprocess.run([*hybridflow_cmd, "describe", "iot"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "from: entry point iot of hybridflow" in result.stdout and "synthetic://readings" in result.stdout


@pytest.mark.streaming
@pytest.mark.prism
@pytest.mark.slow
def test_cli_streaming_on_prism(hybridflow_cmd, tmp_path):
    """`hybridflow run iot --mode streaming --profile prism`: alerts printed as
    they are raised, only for the wearing machines, and a clean exit."""
    from hybridflow.testing.runners import prism_binary
    from hybridflow.testing.services.pytest_plugin import provisioned

    provisioned(prism_binary)
    history = dict(HISTORY, count=800)  # 100 readings per machine
    live = "synthetic://readings?rate=20&seed=7&population=5&machines=8&drifting=0.25&drift_after=5&wear=240"
    result = subprocess.run(
        [*hybridflow_cmd, "run", "iot", "--mode", "streaming", "--profile", "prism", "--duration", "20s",
         f"--input={live}", f"--history={uri(history)}", f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline iot (streaming) on PrismRunner (Prism): DONE in " in result.stdout
    assert "records read     1200\n" in result.stdout  # 800 history + 20 s at 20 a second
    keys = {line.split("machine_id=")[1].split(":")[0] for line in result.stdout.splitlines()
            if line.startswith("ALERT ")}
    worn = {f"machine-{k:04d}" for k in range(8) if SyntheticReadings(**{**history, "drifting": 0.25}).machine(k).drift_per_hour}
    assert keys and keys <= worn
