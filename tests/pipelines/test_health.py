"""The health pipeline: its generator, its results against an independent
plain-Python computation, batch = streaming, PHI masked in dead letters and
never printed, and the CLI end to end."""

import collections
import json
import math
import pathlib
import subprocess

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from hybridflow import get_pipeline
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.health import SyntheticVitals, VitalSigns, ScoreVitals, ScoreWindows
from hybridflow.pipelines.run import run_pipeline
from hybridflow.schemas import to_timestamp
from hybridflow.testing import Collect, CreateEvents, EventStream, batch_pipeline, collected, streaming_pipeline

# 8 patients, an observation each every 8 s; 48 minutes, the deterioration (at 4x pace) from minute 10
INPUT = dict(count=2880, rate=1.0, seed=2, population=5, patients=8, deteriorating=0.25, deteriorate_after=600.0,
             pace=4.0, malformed=0.03, late=0.0)
HISTORY = dict(count=2400, rate=1.0, seed=1, population=5, patients=8, deteriorating=0.0, malformed=0.03, late=0.0)
PHI = ("patient_name", "mrn", "date_of_birth")


def uri(params):
    return "synthetic://vitals?" + "&".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in params.items())


def read_jsonl(directory, name):
    rows = []
    for path in sorted(pathlib.Path(directory).glob(f"{name}*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def phi_values(params):
    """Every name, MRN and date of birth of the generator's patients."""
    config = SyntheticVitals(**params)
    return {getattr(config.patient(k), f) for k in range(params["patients"]) for f in PHI}


def test_the_generator_is_deterministic_and_history_and_live_share_the_patients():
    config = SyntheticVitals(**INPUT)
    assert list(generate_records(config, 0, 400)) == list(generate_records(config, 0, 400))
    assert list(generate_records(config, 100, 200)) == list(generate_records(config, 0, 400))[100:200]
    history = SyntheticVitals(**HISTORY)
    for k in range(8):
        live, past = config.patient(k), history.patient(k)
        assert (live.patient_name, live.mrn, live.date_of_birth, live.normal) == (
            past.patient_name, past.mrn, past.date_of_birth, past.normal)
        assert not past.deteriorates
    assert 1 <= sum(config.patient(k).deteriorates for k in range(8)) < 8
    assert len({config.patient(k).mrn for k in range(8)}) == 8


# --------------------------------------------------------------------------
# An independent computation: the generator's lines, parsed and scored in plain Python

_BOUNDS = {"heart_rate": (0, 300), "spo2": (0, 100), "resp_rate": (0, 80), "temperature": (25, 45),
           "systolic_bp": (0, 300), "glucose": (0, 60)}


def _parse(line):
    """A valid observation as a dict, or None for what must be a dead letter."""
    import re

    try:
        row = json.loads(line)
        event_time = to_timestamp(row["event_time"])
        valid = (isinstance(row["patient_id"], str) and re.fullmatch(r"MRN\d{7}", row["mrn"])
                 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date_of_birth"])
                 and all(isinstance(row[f], (int, float)) and not isinstance(row[f], bool) and lo <= row[f] <= hi
                         for f, (lo, hi) in _BOUNDS.items()))
    except (ValueError, KeyError):
        return None
    return {**row, "micros": event_time.micros} if valid else None


def _news2(r):
    """NEWS2's chart for the five measured parameters, written out as in the chart."""
    rr, spo2, sbp, hr, t = r["resp_rate"], r["spo2"], r["systolic_bp"], r["heart_rate"], r["temperature"]
    score = 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3
    score += 3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0
    score += 3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219 else 3
    score += 3 if hr <= 40 else 1 if hr <= 50 else 0 if hr <= 90 else 1 if hr <= 110 else 2 if hr <= 130 else 3
    score += 3 if t <= 35.0 else 1 if t <= 36.0 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2
    return score


def _observations(params):
    config = SyntheticVitals(**params)
    parsed = [_parse(line) for line in generate_records(config, 0, params["count"])]
    bad = sum(config.malformation(i, 7) is not None for i in range(params["count"]))
    return [{**r, "ews": _news2(r)} for r in parsed if r is not None], bad


def _stddev(values):
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _expected(window=600, period=120, urgent=5.0, z_threshold=3.0, min_history=30, cooldown=1800):
    live, bad_live = _observations(INPUT)
    history, bad_history = _observations(HISTORY)
    floors = {"heart_rate": 2.0, "resp_rate": 1.0, "glucose": 0.3}
    baselines = {}
    for patient in sorted({r["patient_id"] for r in history}):
        rows = [r for r in history if r["patient_id"] == patient]
        baselines[patient] = {
            "readings": len(rows),
            "ews_mean": math.fsum(r["ews"] for r in rows) / len(rows),
            **{f"{v}_mean": math.fsum(r[v] for r in rows) / len(rows) for v in floors},
            **{f"{v}_stddev": _stddev([r[v] for r in rows]) for v in floors},
        }
    windows = collections.defaultdict(list)
    size, step = window * 10**6, period * 10**6
    for r in live:
        last = r["micros"] - r["micros"] % step
        for start in range(last, r["micros"] - size, -step):
            windows[(r["patient_id"], start)].append(r)
    alerts = []  # (rule, patient, event time µs)
    for (patient, start), rows in windows.items():
        if math.fsum(r["ews"] for r in rows) / len(rows) >= urgent:
            alerts.append(("early_warning", patient, start + size))
        base = baselines.get(patient)
        if base is None or base["readings"] < min_history:
            continue
        for vital, floor in floors.items():
            mean = math.fsum(r[vital] for r in rows) / len(rows)
            if (mean - base[f"{vital}_mean"]) / max(base[f"{vital}_stddev"], floor) >= z_threshold:
                alerts.append((f"{vital}_drift", patient, start + size))
    kept = {}
    for rule, patient, micros in sorted(alerts):  # the cooldown keeps the earliest per period
        kept.setdefault((rule, patient, micros // (cooldown * 10**6)), (rule, patient, micros))
    return baselines, sorted(kept.values()), bad_live + bad_history


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("health") / "out"
    spec = get_pipeline("health")
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--mode=batch", f"--input={uri(INPUT)}", f"--history={uri(HISTORY)}",
        f"--output={out}",
    ]))
    return out, summary


def test_baselines_alerts_and_dead_letters_equal_an_independent_computation(batch_run):
    out, summary = batch_run
    baselines, alerts, bad = _expected()
    got = {r["patient_id"]: r for r in pq.read_table(sorted(out.glob("baselines*.parquet"))).to_pylist()}
    assert sorted(got) == sorted(baselines)
    for patient, expected in baselines.items():
        assert got[patient]["readings"] == expected["readings"]
        for name, value in expected.items():
            assert got[patient][name] == pytest.approx(value, rel=1e-12), (patient, name)
    produced = sorted((a["rule"], a["key"], to_timestamp(a["event_time"]).micros) for a in read_jsonl(out, "alerts"))
    assert produced == alerts
    assert {rule for rule, _, _ in alerts} >= {"early_warning", "heart_rate_drift", "resp_rate_drift"}
    deteriorating = {SyntheticVitals(**INPUT).patient(k).patient_id for k in range(8)
                     if SyntheticVitals(**INPUT).patient(k).deteriorates}
    assert {key for _, key, _ in alerts} <= deteriorating
    dead = read_jsonl(out, "dead_letters")
    assert len(dead) == bad == summary.dead_letters > 0
    assert summary.records_read == INPUT["count"] + HISTORY["count"]


def test_phi_is_masked_in_dead_letters_and_absent_from_every_output(batch_run):
    out, _ = batch_run
    dead = read_jsonl(out, "dead_letters")
    reasons = collections.Counter(d["error_type"] for d in dead)
    assert set(reasons) == {"invalid_json", "missing_field", "invalid_type", "invalid_value", "invalid_timestamp"}
    secrets = phi_values(INPUT) | phi_values(HISTORY)
    for d in dead:
        for value in secrets:
            assert value not in d["payload"] and value not in d["message"], (value, d)
    # a bad MRN: the message says what is wrong without the value
    mrn = [d for d in dead if d["message"].startswith("field 'mrn'")]
    assert mrn and all(d["message"] == "field 'mrn': [redacted] does not match 'MRN[0-9]{7}'" for d in mrn)
    parsed = [json.loads(d["payload"]) for d in dead if d["error_type"] != "invalid_json"]
    assert parsed and all(p.get(f) in ("[redacted]", None) for p in parsed for f in PHI)
    assert all('"patient_name": "[redacted]"' in d["payload"] for d in dead if d["error_type"] == "invalid_json")
    # the outputs (alerts, windows, baselines, late) never held PHI at all
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith("dead_letters"):
            data = path.read_bytes()
            assert not any(value.encode() in data for value in secrets), path


def test_keep_sensitive_keeps_phi_in_dead_letters(tmp_path):
    small = dict(INPUT, count=400, malformed=0.2)
    spec = get_pipeline("health")
    run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--mode=batch", f"--input={uri(small)}", f"--history={uri(dict(HISTORY, count=80))}",
        f"--output={tmp_path}", "--keep_sensitive",
    ]))
    dead = [d for d in read_jsonl(tmp_path, "dead_letters") if d["error_type"] != "invalid_json"]
    lines = list(generate_records(SyntheticVitals(**small), 0, small["count"]))
    assert dead and {d["payload"] for d in dead} <= set(lines) | {
        line for line in generate_records(SyntheticVitals(**dict(HISTORY, count=80)), 0, 80)}
    assert any(d["message"].startswith("field 'mrn': '") for d in dead)


def test_no_phi_in_what_a_cli_run_prints(hybridflow_cmd, tmp_path):
    """A whole run on the command line with a share of bad records: nothing
    it prints on stdout or stderr (summary, alerts, warnings) holds PHI."""
    import os

    small = dict(INPUT, count=960, malformed=0.1)
    logs = tmp_path / "logs"
    result = subprocess.run(
        [*hybridflow_cmd, "--log_level=DEBUG", "run", "health", "--runner=FnApiRunner", f"--input={uri(small)}",
         f"--history={uri(dict(HISTORY, count=800))}", f"--output={tmp_path / 'out'}", "--print_alerts"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HYBRIDFLOW_LOG_DIR": str(logs)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dead letters     " in result.stdout and "ALERT " in result.stdout
    log_text = "".join(path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file())
    assert "DEBUG" in result.stderr and log_text  # the DEBUG records were shown, and the log file written
    secrets = phi_values(INPUT) | phi_values(HISTORY)
    leaked = {v for v in secrets if v in result.stdout or v in result.stderr or v in log_text}
    assert not leaked
    dead = read_jsonl(tmp_path / "out", "dead_letters")
    assert len(dead) > 50 and not any(v in json.dumps(dead) for v in secrets)


# --------------------------------------------------------------------------
# batch = streaming


def _records(params):
    config = SyntheticVitals(**{**params, "malformed": 0.0, "disorder": 0.0})
    return [VitalSigns(**{**row, "event_time": to_timestamp(row["event_time"])})
            for row in map(json.loads, generate_records(config, 0, params["count"]))]


@pytest.mark.streaming
def test_batch_and_streaming_scoring_give_the_same_alerts_and_windows(tmp_path):
    # 4 patients, an observation each every 20 s for 13 minutes; two deteriorate fast from minute 3
    live = _records(dict(count=160, rate=0.2, seed=3, population=5, patients=4, deteriorating=0.5,
                         deteriorate_after=200.0, pace=20.0, late=0.0))
    baselines, _, _ = _expected()
    rows = [beam.Row(patient_id=p, **b) for p, b in sorted(baselines.items())]

    def score(pipeline, source, out):
        with pipeline as p:
            table = p | "Baselines" >> beam.Create(rows)
            scored = p | source | ScoreVitals() | ScoreWindows(table, window="sliding:5m/1m", cooldown=0)
            scored["alerts"] | "SaveAlerts" >> Collect(out / "alerts")
            scored["aggregates"] | "SaveWindows" >> Collect(out / "windows")
        alerts = sorted((a.rule, a.key, a.event_time, round(a.value, 9)) for a in collected(out / "alerts"))
        windows = sorted((w.patient_id, w.window_start, w.readings, w.ews_mean) for w in collected(out / "windows"))
        return alerts, windows

    batch = score(batch_pipeline(), CreateEvents(live), tmp_path / "batch")
    stream = score(streaming_pipeline(), EventStream(live), tmp_path / "stream")
    assert batch == stream
    assert {rule for rule, *_ in batch[0]} >= {"early_warning", "heart_rate_drift"}


# --------------------------------------------------------------------------
# The CLI, as a user runs it


def test_the_docs_batch_commands(tmp_path):
    """docs/health.md's commands as a user runs them (generate, run, report)."""
    from tests._docs import example, run_sh

    done = run_sh(example("health.md", "health-batch", "sh"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "output" / "health-files"
    assert (out / "_SUCCESS").exists() and read_jsonl(out, "alerts")
    report = (tmp_path / "health-report.html").read_text()
    assert "Patients by peak early-warning score" in report
    dead = read_jsonl(out, "dead_letters")
    assert dead and all("[redacted]" in d["payload"] for d in dead if d["error_type"] != "invalid_json")
    secrets = phi_values(dict(population=11, patients=8))  # the default inputs' patients, 8 of them
    generated = (tmp_path / "data" / "health" / "vitals-00000-of-00004.jsonl").read_text()
    assert all(v in generated for v in secrets)  # the input holds them all ...
    # ... the report, the dead letters and what the commands printed none
    assert not [v for v in secrets if v in report or v in json.dumps(dead) or v in done.stdout + done.stderr]


def test_describe_names_the_generator_and_the_keep_sensitive_flag(hybridflow_cmd):
    result = subprocess.run([*hybridflow_cmd, "describe", "health"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "from: entry point health of hybridflow" in result.stdout and "synthetic://vitals" in result.stdout
    assert "--keep_sensitive" in result.stdout


@pytest.mark.streaming
@pytest.mark.prism
@pytest.mark.slow
def test_cli_streaming_on_prism(hybridflow_cmd, tmp_path):
    """`hybridflow run health --mode streaming --profile prism`: alerts printed as
    they are raised, only for the deteriorating patients, no PHI printed, and a clean exit."""
    from hybridflow.testing.runners import prism_binary
    from hybridflow.testing.services.pytest_plugin import provisioned

    provisioned(prism_binary)
    history = dict(HISTORY, count=800)  # 100 observations per patient
    live = ("synthetic://vitals?rate=20&seed=7&population=5&patients=8&deteriorating=0.25&deteriorate_after=5"
            "&pace=480&malformed=0.05")
    result = subprocess.run(
        [*hybridflow_cmd, "run", "health", "--mode", "streaming", "--profile", "prism", "--duration", "20s",
         f"--input={live}", f"--history={uri(history)}", f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline health (streaming) on PrismRunner (Prism): DONE in " in result.stdout
    assert "records read     1200\n" in result.stdout  # 800 history + 20 s at 20 a second
    keys = {line.split("patient_id=")[1].split(":")[0] for line in result.stdout.splitlines()
            if line.startswith("ALERT ")}
    config = SyntheticVitals(**{**history, "deteriorating": 0.25})
    assert keys and keys <= {config.patient(k).patient_id for k in range(8) if config.patient(k).deteriorates}
    secrets = phi_values(history)
    assert not {v for v in secrets if v in result.stdout or v in result.stderr}


def test_the_score_follows_the_chart_at_every_band_edge():
    from hybridflow.pipelines.health import early_warning_score, vitals

    def score(hr=70, spo2=97, rr=16, temp=37.0, sbp=120):
        return early_warning_score(vitals([("p", hr, spo2, rr, temp, sbp, 5.0, 0)])[0])

    assert score() == 0
    edges = {"rr": [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (20.5, 2), (21, 2), (24, 2), (25, 3)],
             "spo2": [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
             "sbp": [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
             "hr": [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
             "temp": [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)]}
    for name, cases in edges.items():
        assert [score(**{name: value}) for value, _ in cases] == [points for _, points in cases], name
    assert score(hr=135, spo2=90, rr=26, temp=34.0, sbp=85) == 15


@pytest.mark.parametrize("flag, message", [
    ("--urgent_score=0", "--urgent_score=0.0: must be a score in (0, 15]"),
    ("--zscore_threshold=nan", "--zscore_threshold=nan: must be a finite number > 0"),
    ("--min_history=-1", "--min_history=-1: must be >= 0"),
])
def test_bad_flags_are_one_line_errors_naming_the_flag(hybridflow_cmd, flag, message):
    result = subprocess.run([*hybridflow_cmd, "run", "health", flag], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
