"""The ecommerce pipeline: its generator, its results against an independent
plain-Python computation, batch = streaming, and the CLI end to end."""

import collections
import json
import math
import pathlib
import re
import subprocess

from typing import Optional

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.typehints.row_type import RowTypeConstraint

from hybridflow import get_pipeline
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.ecommerce import ScoreShopEvents, ShopEvent, SyntheticShop
from hybridflow.pipelines.run import run_pipeline
from hybridflow.schemas import to_timestamp
from hybridflow.testing import Collect, CreateEvents, EventStream, batch_pipeline, collected, streaming_pipeline

# 6 products; 12 hours of a day after the history, product p002 promoted (8x) from 04:00
INPUT = dict(count=4320, rate=0.1, seed=2, population=5, products=6, surge=8.0, surge_after=14400.0,
             start="2026-01-05T00:00:00Z", malformed=0.03, late=0.0)
# three days of the same shop, no surge
HISTORY = dict(count=25920, rate=0.1, seed=1, population=5, products=6, malformed=0.03, late=0.0)
GAP, LEAD_HOURS, SPIKE_Z, DROP_RATIO, MIN_HISTORY, COOLDOWN = 1800, 4.0, 3.0, 0.25, 2, 3600
MICROS = 10**6


def uri(params):
    return "synthetic://shop?" + "&".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in params.items())


def read_jsonl(directory, name):
    rows = []
    for path in sorted(pathlib.Path(directory).glob(f"{name}*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_the_generator_is_deterministic_and_history_and_live_share_the_catalogue():
    config = SyntheticShop(**INPUT)
    assert list(generate_records(config, 0, 600)) == list(generate_records(config, 0, 600))
    assert list(generate_records(config, 200, 300)) == list(generate_records(config, 0, 600))[200:300]
    assert config.catalogue() == SyntheticShop(**HISTORY).catalogue()
    rows = [json.loads(line) for line in generate_records(SyntheticShop(**{**INPUT, "malformed": 0.0}), 0, 1200)]
    types = collections.Counter(r["event_type"] for r in rows)
    assert set(types) == {"view", "add_to_cart", "checkout", "order"} and types["checkout"] == types["order"]
    # a session is six events of one user about one product, `shoppers` records apart
    first = [r for i, r in enumerate(rows) if i % 20 == 0][:6]
    assert len({(r["user_id"], r["product_id"]) for r in first}) == 1
    assert all(r["stock"] is None for r in rows if r["event_type"] != "order")


# --------------------------------------------------------------------------
# An independent computation: the generator's lines, parsed and scored in plain Python


def _parse(line):
    """A valid event as a dict, or None for what must be a dead letter."""
    try:
        row = json.loads(line)
        micros = to_timestamp(row["event_time"]).micros
        valid = (all(isinstance(row[f], str) and row[f] for f in ("event_id", "user_id", "product_id"))
                 and row["event_type"] in ("view", "add_to_cart", "checkout", "order")
                 and isinstance(row["quantity"], int) and 1 <= row["quantity"] <= 1000)
    except (ValueError, KeyError):
        return None
    return {**row, "micros": micros} if valid else None


def _events(params):
    config = SyntheticShop(**params)
    parsed = [_parse(line) for line in generate_records(config, 0, params["count"])]
    bad = sum(config.malformation(i, 5) is not None for i in range(params["count"]))
    return [r for r in parsed if r is not None], bad


def _stddev(values):
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _hourly(events):
    """{(product, hour start µs): units} of the order events."""
    units = collections.Counter()
    for r in events:
        if r["event_type"] == "order":
            units[(r["product_id"], r["micros"] - r["micros"] % (3600 * MICROS))] += r["quantity"]
    return units


def _hour_of_day(micros):
    return micros // (3600 * MICROS) % 24


def _sessions(events, gap=GAP):
    """(user, start µs, end µs, events of the session) of every user session."""
    out = []
    per_user = collections.defaultdict(list)
    for r in events:
        per_user[r["user_id"]].append(r)
    for user, rows in per_user.items():
        rows.sort(key=lambda r: r["micros"])
        current = [rows[0]]
        for r in rows[1:]:
            if r["micros"] < current[-1]["micros"] + gap * MICROS:
                current.append(r)
            else:
                out.append((user, current[0]["micros"], current[-1]["micros"] + gap * MICROS, current))
                current = [r]
        out.append((user, current[0]["micros"], current[-1]["micros"] + gap * MICROS, current))
    return out


def _profile(history):
    per_slot = collections.defaultdict(list)
    per_product = collections.defaultdict(list)
    for (product, start), units in _hourly(history).items():
        per_slot[(product, _hour_of_day(start))].append(units)
        per_product[product].append(units)
    profile = {slot: {"hours": len(v), "units_mean": math.fsum(v) / len(v), "units_stddev": _stddev(v)}
               for slot, v in per_slot.items()}
    reorder = {p: math.fsum(v) / len(v) * LEAD_HOURS for p, v in per_product.items()}
    return profile, reorder


def _cooled(alerts, cooldown=COOLDOWN):
    kept = {}
    for rule, key, micros, value in sorted(alerts):  # the cooldown keeps the earliest per period
        kept.setdefault((rule, key, micros // (cooldown * MICROS)), (rule, key, micros, value))
    return sorted(kept.values())


def _expected_alerts(live, profile, reorder, gap=GAP, cooldown=COOLDOWN):
    abandoned = []
    for user, _, end, rows in _sessions(live, gap):
        value = math.fsum(r["price"] * r["quantity"] for r in rows if r["event_type"] == "add_to_cart")
        if value > 0 and not any(r["event_type"] == "checkout" for r in rows):
            abandoned.append(("cart_abandoned", user, end, value))
    demand = []
    for (product, start), units in _hourly(live).items():
        usual = profile.get((product, _hour_of_day(start)))
        if usual is None or usual["hours"] < MIN_HISTORY:
            continue
        z = (units - usual["units_mean"]) / max(usual["units_stddev"], 1.0)
        if z >= SPIKE_Z:
            demand.append(("demand_spike", product, start + 3600 * MICROS, z))  # a z-score alert's value: z
        if units < usual["units_mean"] * DROP_RATIO:
            demand.append(("demand_drop", product, start + 3600 * MICROS, float(units)))
    stock = [("low_stock", r["product_id"], r["micros"], float(r["stock"])) for r in live
             if r["event_type"] == "order" and r["product_id"] in reorder and r["stock"] < reorder[r["product_id"]]]
    return sorted(abandoned) + _cooled(demand, cooldown) + _cooled(stock, cooldown)


@pytest.fixture(scope="module")
def expected():
    live, bad_live = _events(INPUT)
    history, bad_history = _events(HISTORY)
    profile, reorder = _profile(history)
    return live, profile, reorder, _expected_alerts(live, profile, reorder), bad_live + bad_history


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ecommerce") / "out"
    spec = get_pipeline("ecommerce")
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--mode=batch", f"--input={uri(INPUT)}", f"--history={uri(HISTORY)}",
        f"--output={out}", f"--min_history={MIN_HISTORY}",
    ]))
    return out, summary


def _micros(text):
    return to_timestamp(text).micros


def test_profiles_sessions_alerts_and_dead_letters_equal_an_independent_computation(batch_run, expected):
    out, summary = batch_run
    live, profile, reorder, alerts, bad = expected
    got = {(r["product_id"], r["hour"]): r for r in pq.read_table(sorted(out.glob("demand_profile*.parquet"))).to_pylist()}
    assert sorted(got) == sorted(profile)
    for slot, usual in profile.items():
        assert got[slot]["hours"] == usual["hours"]
        assert got[slot]["units_mean"] == pytest.approx(usual["units_mean"], rel=1e-12), slot
        assert got[slot]["units_stddev"] == pytest.approx(usual["units_stddev"], rel=1e-12), slot
    points = {r["product_id"]: r["reorder_point"] for r in pq.read_table(sorted(out.glob("reorder_points*.parquet"))).to_pylist()}
    assert points == pytest.approx(reorder, rel=1e-12)

    sessions = sorted((s["user_id"], _micros(s["window_start"]), _micros(s["window_end"]), s["events"], s["carts"],
                       s["checkouts"], s["orders"]) for s in read_jsonl(out, "sessions"))
    assert sessions == sorted(
        (user, start, end, len(rows), *(sum(r["event_type"] == t for r in rows) for t in ("add_to_cart", "checkout", "order")))
        for user, start, end, rows in _sessions(live)
    )
    demand = {(d["product_id"], _micros(d["window_start"])): d["units"] for d in read_jsonl(out, "demand")}
    assert demand == dict(_hourly(live))

    produced = sorted((a["rule"], a["key"], _micros(a["event_time"]), a["value"]) for a in read_jsonl(out, "alerts"))
    assert [a[:3] for a in produced] == [a[:3] for a in sorted(alerts)]
    assert [a[3] for a in produced] == pytest.approx([a[3] for a in sorted(alerts)], rel=1e-12)
    rules = collections.Counter(rule for rule, *_ in alerts)
    assert set(rules) == {"cart_abandoned", "demand_spike", "demand_drop", "low_stock"}, rules
    # the promoted product is the one whose demand spikes and whose stock runs low once the surge is on
    surge = to_timestamp(INPUT["start"]).micros + INPUT["surge_after"] * MICROS
    assert {key for rule, key, *_ in alerts if rule == "demand_spike"} == {"p002"}
    assert {key for rule, key, micros, _ in alerts if rule == "low_stock"} == {"p002"}
    assert min(micros for rule, _, micros, _ in alerts if rule in ("demand_spike", "low_stock")) > surge
    dead = read_jsonl(out, "dead_letters")
    assert len(dead) == bad == summary.dead_letters > 0
    assert {d["error_type"] for d in dead} == {"invalid_json", "missing_field", "invalid_value", "invalid_timestamp"}
    assert summary.records_read == INPUT["count"] + HISTORY["count"]


# --------------------------------------------------------------------------
# batch = streaming


def _records(params):
    config = SyntheticShop(**{**params, "malformed": 0.0, "disorder": 0.0})
    return [ShopEvent(**{**row, "event_time": to_timestamp(row["event_time"])})
            for row in map(json.loads, generate_records(config, 0, params["count"]))]


@pytest.mark.streaming
def test_batch_and_streaming_scoring_give_the_same_alerts_and_windows(tmp_path, expected):
    # 50 minutes of the evening peak, 8 shoppers at a time; p002 promoted (8x), stock restocked hourly
    live = _records(dict(count=300, rate=0.1, seed=3, population=5, products=6, shoppers=8, surge=8.0,
                         surge_after=0.0, restock=3600.0, start="2026-01-05T19:00:00Z", late=0.0))
    _, profile, reorder, _, _ = expected
    profile_rows = [beam.Row(product_id=p, hour=h, hours=u["hours"], units_mean=u["units_mean"],
                             units_stddev=u["units_stddev"], units_p90=u["units_mean"]) for (p, h), u in sorted(profile.items())]
    reorder_rows = [beam.Row(product_id=p, reorder_point=r) for p, r in sorted(reorder.items())]

    def score(pipeline, source, out):
        with pipeline as p:
            table = p | "Profile" >> beam.Create(profile_rows).with_output_types(RowTypeConstraint.from_fields(
                [("product_id", str), ("hour", int), ("hours", int), ("units_mean", Optional[float]),
                 ("units_stddev", Optional[float]), ("units_p90", Optional[float])]))
            points = p | "ReorderPoints" >> beam.Create(reorder_rows)
            scored = p | source | ScoreShopEvents(table, points, session="session:30m", cooldown=0,
                                                      min_history=MIN_HISTORY)
            scored["alerts"] | "SaveAlerts" >> Collect(out / "alerts")
            scored["sessions"] | "SaveSessions" >> Collect(out / "sessions")
            scored["demand"] | "SaveDemand" >> Collect(out / "demand")
        alerts = sorted((a.rule, a.key, a.event_time, round(a.value, 9)) for a in collected(out / "alerts"))
        sessions = sorted((s.user_id, s.window_start, s.window_end, s.events, s.carts, s.cart_value)
                          for s in collected(out / "sessions"))
        demand = sorted((d.product_id, d.window_start, d.units, d.usual_units_mean) for d in collected(out / "demand"))
        return alerts, sessions, demand

    batch = score(batch_pipeline(), CreateEvents(live), tmp_path / "batch")
    stream = score(streaming_pipeline(), EventStream(live), tmp_path / "stream")
    assert batch == stream
    assert {rule for rule, *_ in batch[0]} >= {"cart_abandoned", "demand_spike", "low_stock"}


# --------------------------------------------------------------------------
# The CLI, as a user runs it


def test_the_docs_batch_commands(hybridflow_cmd, tmp_path):
    """docs/ecommerce.md's commands as a user runs them (generate, run, report)."""
    from tests._docs import example, run_sh

    done = run_sh(example("ecommerce.md", "ecommerce-batch", "sh"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "output" / "ecommerce-files"
    assert (out / "_SUCCESS").exists()
    rules = {a["rule"] for a in read_jsonl(out, "alerts")}
    assert {"cart_abandoned", "low_stock"} <= rules, rules
    html = (tmp_path / "ecommerce-report.html").read_text()
    assert "Products by their busiest hour" in html and "Sessions by outcome" in html


def test_describe_names_the_generator(hybridflow_cmd):
    result = subprocess.run([*hybridflow_cmd, "describe", "ecommerce"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "from: entry point ecommerce of hybridflow" in result.stdout and "synthetic://shop" in result.stdout


@pytest.mark.parametrize("flag, says", [
    ("--drop_ratio=1", "--drop_ratio=1.0: must be a share from 0 (off) to under 1"),
    ("--spike_zscore=0", "--spike_zscore=0.0: must be a finite number > 0"),
    ("--lead_time=0", "--lead_time=0.0: must be a duration > 0"),
    ("--min_history=0", "--min_history=0: must be >= 1"),
    ("--min_cart_value=-5", "--min_cart_value=-5.0: must be a finite number >= 0"),
    ("--input=synthetic://shop?count=10&surge=0.5", "surge=0.5 must be >= 1"),
    ("--history=synthetic://shop?count=10&promoted=12", "promoted=12 must be a product index"),
])
def test_bad_flags_and_generator_parameters_are_refused_naming_them(flag, says):
    from hybridflow.errors import InvalidOptionError, InvalidUriError

    with pytest.raises((InvalidOptionError, InvalidUriError), match=re.escape(says)):
        get_pipeline("ecommerce").options([flag])


def test_a_window_that_is_not_a_session_is_refused_naming_the_flag(hybridflow_cmd, tmp_path):
    result = subprocess.run([*hybridflow_cmd, "run", "ecommerce", "--window=fixed:1h", f"--output={tmp_path}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "--window=fixed:1h" in result.stderr and "session:GAP" in result.stderr


@pytest.mark.streaming
@pytest.mark.prism
@pytest.mark.slow
def test_cli_streaming_on_prism(hybridflow_cmd, tmp_path):
    """`hybridflow run ecommerce --mode streaming --profile prism`: abandoned
    carts printed as they are raised, and a clean exit."""
    from hybridflow.testing.runners import prism_binary
    from hybridflow.testing.services.pytest_plugin import provisioned

    provisioned(prism_binary)
    history = dict(HISTORY, count=8640)  # a day of the shop
    live = "synthetic://shop?rate=20&seed=7&population=5&products=6&shoppers=20&surge=4&surge_after=5&restock=1m"
    result = subprocess.run(
        [*hybridflow_cmd, "run", "ecommerce", "--mode", "streaming", "--profile", "prism", "--duration", "20s",
         f"--input={live}", f"--history={uri(history)}", f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline ecommerce (streaming) on PrismRunner (Prism): DONE in " in result.stdout
    assert "records read     9040\n" in result.stdout  # 8640 history + 20 s at 20 a second
    printed = [line for line in result.stdout.splitlines() if line.startswith("ALERT ")]
    assert any(" cart_abandoned user_id=" in line for line in printed), result.stdout[-3000:]
