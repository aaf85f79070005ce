"""The supply_chain pipeline: its generators, its results against an
independent plain-Python computation, batch = streaming, and the CLI end to end."""

import collections
import json
import math
import pathlib
import subprocess
from fractions import Fraction

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import get_pipeline
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.run import run_pipeline
from hybridflow.pipelines.supply_chain import (
    ScoreShipments, ShipmentPlan, SyntheticShipmentPlans, SyntheticStockSnapshots, SyntheticTruckPings, TruckPing
)
from hybridflow.pipelines.supply_chain.pipeline import inherit_network
from hybridflow.schemas import to_timestamp
from hybridflow.testing import (Collect, CreateEvents, EventStream, Watermark, batch_pipeline, collected,
                                streaming_pipeline)

# 24 trucks to the 24 item-locations of 3 warehouses, a ping each every 2 minutes for 6 hours;
# three of them slow down after 30 minutes
NETWORK = dict(population=42, shipments=24)
INPUT = dict(count=4320, rate=0.2, seed=2, malformed=0.03, late=0.0, **NETWORK)
PLANS = dict(seed=3, malformed=0.1, **NETWORK)
HISTORY = dict(seed=1, malformed=0.03, **NETWORK)
WINDOW, LATE_MINUTES, HORIZON_HOURS, COOLDOWN = 900, 30.0, 12.0, 3600


def uri(stream, params):
    return f"synthetic://{stream}?" + "&".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def read_jsonl(directory, name):
    rows = []
    for path in sorted(pathlib.Path(directory).glob(f"{name}*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_the_generators_are_deterministic_and_describe_one_network():
    pings = SyntheticTruckPings(**INPUT)
    assert list(generate_records(pings, 0, 300)) == list(generate_records(pings, 0, 300))
    assert list(generate_records(pings, 100, 200)) == list(generate_records(pings, 0, 300))[100:200]
    plans, history = SyntheticShipmentPlans(**PLANS), SyntheticStockSnapshots(**HISTORY)
    assert plans.record_count == 24 and history.record_count == 28 * 24  # whatever `count` says
    assert SyntheticShipmentPlans(count=5, **PLANS).record_count == 24
    for k in range(24):
        assert plans.shipment(k) == pings.shipment(k)  # the same trucks, whatever the seed
    assert {plans.shipment(k).item.location_sku for k in range(24)} == {history.item(j).location_sku for j in range(24)}
    assert sum(pings.shipment(k).slowdown < 1 for k in range(24)) == 3
    # a delayed truck keeps its speed until delay_after, then slows down
    late = next(pings.shipment(k) for k in range(24) if pings.shipment(k).slowdown < 1)
    assert pings.distance_left(late, 1800) == pytest.approx(late.distance_km - late.speed_kmh / 2)
    assert pings.distance_left(late, 5400) == pytest.approx(late.distance_km - late.speed_kmh * (0.5 + late.slowdown))
    # a synthetic plans or history URI takes the input's network, not what it sets itself
    assert inherit_network("synthetic://shipment-plans?seed=3&shipments=5", "synthetic://truck-pings?shipments=24&distance=9") \
        == "synthetic://shipment-plans?seed=3&shipments=5&distance=9"
    assert inherit_network("plans.jsonl", "synthetic://truck-pings?shipments=24") == "plans.jsonl"


# --------------------------------------------------------------------------
# An independent computation: the generators' lines, parsed and scored in plain Python


def _number(value, low, high):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _parse(line, check):
    try:
        row = json.loads(line)
        ok = check(row)
    except (ValueError, KeyError, TypeError):
        return None
    return row if ok else None


def _ping_ok(r):
    r["micros"] = to_timestamp(r["event_time"]).micros
    return (all(isinstance(r[f], str) for f in ("ping_id", "shipment_id", "truck_id"))
            and _number(r["distance_km"], 0, 5000) and _number(r["speed_kmh"], 0, 160))


def _plan_ok(r):
    r["eta_micros"] = to_timestamp(r["planned_eta"]).micros
    to_timestamp(r["departure"])
    return isinstance(r["location_sku"], str) and isinstance(r["quantity"], int) and r["quantity"] >= 1


def _snapshot_ok(r):
    r["micros"] = to_timestamp(r["event_time"]).micros
    return (isinstance(r["location_sku"], str) and isinstance(r["on_hand"], int) and r["on_hand"] >= 0
            and isinstance(r["demand"], int) and r["demand"] >= 0)


def _lines(config):
    return list(generate_records(config, 0, config.record_count))


def _stddev(values):
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _stock_levels(snapshots):
    levels = {}
    for key in sorted({s["location_sku"] for s in snapshots}):
        rows = [s for s in snapshots if s["location_sku"] == key]
        latest = max(rows, key=lambda s: (s["micros"], s["snapshot_id"]))
        demand = [s["demand"] for s in rows]
        levels[key] = {"on_hand": latest["on_hand"], "days": len(rows),
                       "demand_mean": math.fsum(demand) / len(demand), "demand_stddev": _stddev(demand)}
    return levels


def _score(pings, plans, levels, late_minutes=LATE_MINUTES, horizon_hours=HORIZON_HOURS, window=WINDOW,
           cooldown=COOLDOWN):
    """alerts as sorted (rule, key, window end µs), and the number of shipment windows with no plan."""
    size = window * 10**6
    windows = collections.defaultdict(list)
    for p in pings:
        windows[(p["shipment_id"], p["micros"] - p["micros"] % size)].append(p)
    alerts, unplanned = [], 0
    inbound = collections.defaultdict(int)
    for (shipment, start), rows in sorted(windows.items()):
        plan = plans.get(shipment)
        if plan is None:
            unplanned += 1
            continue
        distance = min(r["distance_km"] for r in rows)
        speed = float(Fraction(sum(Fraction(r["speed_kmh"]) for r in rows), len(rows)))  # exact, rounded once
        end = start + size
        key = (plan["location_sku"], start)
        inbound[key] += 0
        if speed == 0:  # at its dock: no projection, and in time if arrived
            inbound[key] += plan["quantity"] if distance == 0 else 0
            continue
        delay = (end / 1e6 + 3600 * distance / speed - plan["eta_micros"] / 1e6) / 60
        if round(delay, 1) > late_minutes:
            alerts.append(("eta_late", shipment, end))
        if distance == 0 or distance / speed <= horizon_hours:
            inbound[key] += plan["quantity"]
    for (item, start), quantity in inbound.items():
        level = levels.get(item)
        if level is not None and level["on_hand"] + quantity < round(level["demand_mean"] * horizon_hours / 24, 2):
            alerts.append(("stock_out_risk", item, start + size))
    kept = {}
    for rule, key, micros in sorted(alerts):  # the cooldown keeps the earliest per period
        kept.setdefault((rule, key, micros // (cooldown * 10**6)), (rule, key, micros))
    return sorted(kept.values()), unplanned


def _expected():
    ping_lines = _lines(SyntheticTruckPings(**INPUT))
    plan_lines = _lines(SyntheticShipmentPlans(**PLANS))
    snapshot_lines = _lines(SyntheticStockSnapshots(**HISTORY))
    pings = [r for r in (_parse(line, _ping_ok) for line in ping_lines) if r]
    plans = {r["shipment_id"]: r for r in (_parse(line, _plan_ok) for line in plan_lines) if r}
    snapshots = [r for r in (_parse(line, _snapshot_ok) for line in snapshot_lines) if r]
    levels = _stock_levels(snapshots)
    alerts, unplanned = _score(pings, plans, levels)
    bad = (len(ping_lines) - len(pings)) + (len(plan_lines) - len(plans)) + (len(snapshot_lines) - len(snapshots))
    return levels, alerts, bad, unplanned, len(ping_lines) + len(plan_lines) + len(snapshot_lines)


def _micros(text):
    return to_timestamp(text).micros


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("supply_chain") / "out"
    spec = get_pipeline("supply_chain")
    summary = run_pipeline(spec, spec.options([
        "--runner=FnApiRunner", "--mode=batch", f"--input={uri('truck-pings', INPUT)}",
        f"--plans={uri('shipment-plans', PLANS)}", f"--history={uri('stock-snapshots', HISTORY)}",
        f"--output={out}",
    ]))
    return out, summary


def test_stock_levels_alerts_and_dead_letters_equal_an_independent_computation(batch_run):
    out, summary = batch_run
    levels, alerts, bad, unplanned, records = _expected()
    got = {r["location_sku"]: r for r in pq.read_table(sorted(out.glob("stock_levels*.parquet"))).to_pylist()}
    assert sorted(got) == sorted(levels) and len(levels) == 24
    for key, expected in levels.items():
        assert (got[key]["on_hand"], got[key]["days"]) == (expected["on_hand"], expected["days"]), key
        for name in ("demand_mean", "demand_stddev"):
            assert got[key][name] == pytest.approx(expected[name], rel=1e-12), (key, name)
    produced = sorted((a["rule"], a["key"], _micros(a["event_time"])) for a in read_jsonl(out, "alerts"))
    assert produced == alerts
    assert {rule for rule, _, _ in alerts} == {"eta_late", "stock_out_risk"}
    dead = read_jsonl(out, "dead_letters")
    reasons = collections.Counter(d["error_type"] for d in dead)
    assert unplanned > 0 and reasons["missing_key"] == unplanned  # the windows of a shipment whose plan was bad
    assert len(dead) == bad + unplanned == summary.dead_letters
    assert summary.records_read == records


def test_only_delayed_trucks_are_late(batch_run):
    out, _ = batch_run
    pings = SyntheticTruckPings(**INPUT)
    delayed = {pings.shipment(k).shipment_id for k in range(24) if pings.shipment(k).slowdown < 1}
    late = {a["key"] for a in read_jsonl(out, "alerts") if a["rule"] == "eta_late"}
    assert late and late <= delayed
    windows = read_jsonl(out, "shipments")
    on_time = [w for w in windows if w["shipment_id"] not in delayed and w["delay_minutes"] is not None]
    assert on_time and max(w["delay_minutes"] for w in on_time) < 0  # 15 % slack: early, as planned


# --------------------------------------------------------------------------
# batch = streaming


def _records(config, record_type):
    lines = generate_records(config, 0, config.record_count)
    return [record_type(**{**row, **{f: to_timestamp(row[f]) for f in ("event_time", "departure", "planned_eta")
                                      if f in row}}) for row in map(json.loads, lines)]


@pytest.mark.streaming
def test_batch_and_streaming_scoring_give_the_same_alerts_and_windows(tmp_path):
    # 6 trucks on 30-90 km trips, a ping each a minute for 50 minutes; two slow down after 5 minutes
    network = dict(population=27, shipments=6, distance=60.0, delayed=0.34, delay_after=300.0, skus=2)
    live = _records(SyntheticTruckPings(count=300, rate=0.1, seed=3, malformed=0.0, disorder=0.0, late=0.0,
                                        **network), TruckPing)
    plans = _records(SyntheticShipmentPlans(malformed=0.0, **network), ShipmentPlan)
    snapshots = [json.loads(line) for line in _lines(SyntheticStockSnapshots(malformed=0.0, **network))]
    for s in snapshots:
        s["micros"] = _micros(s["event_time"])
    levels = _stock_levels(snapshots)
    rows = [beam.Row(location_sku=k, **v) for k, v in sorted(levels.items())]

    def score(pipeline, source, out):
        with pipeline as p:
            stock = p | "Stock" >> beam.Create(rows)
            plan_rows = p | "Plans" >> beam.Create(plans).with_output_types(ShipmentPlan)
            scored = p | source | ScoreShipments(plan_rows, stock, window="fixed:5m", late_threshold=600,
                                                 horizon=1800, cooldown=0)
            scored["alerts"] | "SaveAlerts" >> Collect(out / "alerts")
            scored["shipments"] | "SaveShipments" >> Collect(out / "shipments")
            scored["stock"] | "SaveStock" >> Collect(out / "stock")
        alerts = sorted((a.rule, a.key, a.event_time, a.value) for a in collected(out / "alerts"))
        shipments = sorted((w.shipment_id, w.window_start, w.pings, w.distance_km, w.speed_kmh, w.delay_minutes,
                            w.inbound) for w in collected(out / "shipments"))
        stock = sorted((w.location_sku, w.window_start, w.shipments, w.inbound, w.available)
                       for w in collected(out / "stock"))
        return alerts, shipments, stock

    # the watermark follows the pings minute by minute, as a real source's does: the item-location
    # windows aggregate the shipment windows' rows, so a shipment window must reach them before the
    # watermark passes its end (Beam's timer holds on Prism and Flink; the Python direct runner
    # given one jump to the end of time fires the windows of one key before another's rows arrive,
    # which then go to `late`)
    items = []
    for previous, ping in zip([None] + live, live):
        minute = ping.event_time.micros // 60_000_000
        if previous is not None and minute != previous.event_time.micros // 60_000_000:
            items.append(Watermark(Timestamp(micros=minute * 60_000_000)))
        items.append(ping)
    batch = score(batch_pipeline(), CreateEvents(live), tmp_path / "batch")
    stream = score(streaming_pipeline(), EventStream(items), tmp_path / "stream")
    assert batch == stream
    assert {rule for rule, *_ in batch[0]} == {"eta_late", "stock_out_risk"}
    by_plan = {p.shipment_id: p for p in plans}
    expected, _ = _score([{**r._asdict(), "micros": r.event_time.micros} for r in live],
                         {k: {"location_sku": p.location_sku, "quantity": p.quantity,
                              "eta_micros": p.planned_eta.micros} for k, p in by_plan.items()},
                         levels, late_minutes=10.0, horizon_hours=0.5, window=300, cooldown=1e-6)
    assert sorted((rule, key, t.micros) for rule, key, t, _ in batch[0]) == expected


# --------------------------------------------------------------------------
# The CLI, as a user runs it


def test_the_docs_batch_commands(tmp_path):
    """docs/supply_chain.md's commands as a user runs them (generate, run, report)."""
    from tests._docs import example, run_sh

    done = run_sh(example("supply_chain.md", "supply-chain-batch", "sh"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "output" / "supply_chain-files"
    assert (out / "_SUCCESS").exists()
    assert {a["rule"] for a in read_jsonl(out, "alerts")} == {"eta_late", "stock_out_risk"}
    assert sorted(p.name for p in (tmp_path / "data" / "supply_chain").iterdir())[0].startswith("history-")
    html = (tmp_path / "supply_chain-report.html").read_text()
    assert "Shipments by projected delay" in html and "Item-locations by stock shortfall" in html


def test_describe_names_the_generators(hybridflow_cmd):
    result = subprocess.run([*hybridflow_cmd, "describe", "supply_chain"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "from: entry point supply_chain of hybridflow" in result.stdout
    for stream in ("truck-pings", "shipment-plans", "stock-snapshots"):
        assert f"synthetic://{stream}" in result.stdout


def test_a_sliding_window_is_refused_with_the_fix(hybridflow_cmd):
    result = subprocess.run([*hybridflow_cmd, "run", "supply_chain", "--window=sliding:10m/2m"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--window=sliding:10m/2m: supply_chain needs a fixed window (e.g. fixed:15m)" in result.stderr


@pytest.mark.streaming
@pytest.mark.prism
@pytest.mark.slow
def test_cli_streaming_on_prism(hybridflow_cmd, tmp_path):
    """`hybridflow run supply_chain --mode streaming --profile prism`: alerts
    printed as they are raised, eta_late only for the delayed trucks, and a clean exit."""
    from hybridflow.testing.runners import prism_binary
    from hybridflow.testing.services.pytest_plugin import provisioned

    provisioned(prism_binary)
    result = subprocess.run(
        [*hybridflow_cmd, "run", "supply_chain", "--mode", "streaming", "--profile", "prism", "--duration", "30s",
         f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline supply_chain (streaming) on PrismRunner (Prism): DONE in " in result.stdout
    assert "records read     1296\n" in result.stdout  # 600 pings (30 s at 20 a second) + 24 plans + 672 snapshots
    late = {line.split("shipment_id=")[1].split(":")[0] for line in result.stdout.splitlines()
            if line.startswith("ALERT ") and " eta_late " in line}
    pings = SyntheticTruckPings(distance=1.5, delay_after=15.0)
    assert late and late <= {pings.shipment(k).shipment_id for k in range(24) if pings.shipment(k).slowdown < 1}
