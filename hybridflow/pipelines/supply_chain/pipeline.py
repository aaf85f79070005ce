"""supply_chain: ETA deviation per shipment and stock-out risk per
item-location, hybrid batch + streaming.

Batch layer: from a history of daily stock snapshots, per item-location its
latest stock and its demand rate (:mod:`~hybridflow.pipelines.supply_chain.stock`).

Scoring, the same transforms in both modes
(:mod:`~hybridflow.pipelines.supply_chain.scoring`): parse + validate truck
pings (dead letters) -> per shipment, fixed windows of its pings joined with
its plan -> projected arrival vs planned ETA (``eta_late``) -> per
item-location, the inbound projected within the horizon, joined with its
stock -> ``stock_out_risk`` -> alerts, with a cooldown.

``--mode batch`` scores a bounded input; ``--mode streaming`` an unbounded one.
A synthetic ``--plans`` or ``--history`` takes the network parameters and the
start of a synthetic ``--input`` it does not set itself, so the defaults
describe the same trucks and warehouses; a streaming run pins a synthetic
input's ``start`` to the time the pipeline is built, for the plans' ETAs.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.io.synthetic import event_text
from hybridflow.io.uri import parse_uri
from hybridflow.options import HybridflowOptions, duration_arg
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import (
    check_inputs, check_side_inputs, check_window, file_sinks, read_records, stream_uri
)
from hybridflow.pipelines.supply_chain.generator import (
    SyntheticShipmentPlans, SyntheticStockSnapshots, SyntheticTruckPings
)
from hybridflow.pipelines.supply_chain.records import ShipmentPlan, StockSnapshot, TruckPing
from hybridflow.pipelines.supply_chain.report import report_sections
from hybridflow.pipelines.supply_chain.scoring import ScoreShipments
from hybridflow.pipelines.supply_chain.stock import BuildStockLevels
from hybridflow.transforms.windows import FixedWindow, window_spec

__all__ = ["SupplyChainOptions", "build", "sinks", "validate", "SPEC", "inherit_network"]

#: what a synthetic plans or history URI takes from a synthetic input
NETWORK_PARAMS = ("population", "warehouses", "skus", "shipments", "distance", "delayed", "delay_after", "days",
                  "start")
DEFAULTS = {
    "batch": {
        # 24 trucks, one to each item-location, a ping each a minute, for 8 hours
        "input": "synthetic://truck-pings?count=11520&rate=0.4&seed=2",
        "output": "output/supply_chain",
        "output_format": "jsonl",
        "window": "fixed:15m",
        "allowed_lateness": 300.0,
        "cooldown": 3600.0,
        "print_alerts": False,
    },
    "streaming": {
        # 24 delivery vans on 0.75-2.25 km trips, 20 pings a second; the delayed ones slow down after 15 s
        "input": "synthetic://truck-pings?rate=20&seed=7&distance=1.5&delay_after=15",
        "output": "output/supply_chain-streaming",
        "output_format": "jsonl",
        "window": "fixed:10s",
        "allowed_lateness": 30.0,
        "cooldown": 300.0,
        "print_alerts": True,
    },
}
#: --late_threshold and --horizon when not given, per mode (seconds)
MODE_THRESHOLDS = {"batch": (1800.0, 43200.0), "streaming": (20.0, 120.0)}


class SupplyChainOptions(PipelineParameters):
    """Parameters of the supply_chain pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--plans",
            default="synthetic://shipment-plans?seed=3",
            help="Shipment plans (shipment_id, truck_id, warehouse, sku, location_sku, quantity, departure, "
            "planned_eta): the reference data each shipment's pings are joined with.",
        )
        parser.add_argument(
            "--history",
            default="synthetic://stock-snapshots?seed=1",
            help="Bounded history of daily stock snapshots to compute each item-location's stock and demand from.",
        )
        parser.add_argument(
            "--late_threshold",
            type=duration_arg,
            default=None,
            help="eta_late: alert when a shipment's projected arrival is more than this after its planned ETA "
            "(default: 30m in batch, 20s in streaming).",
        )
        parser.add_argument(
            "--horizon",
            type=duration_arg,
            default=None,
            help="stock_out_risk: inbound counts when projected to arrive within this; alert when stock on hand + "
            "inbound is below the demand over it (default: 12h in batch, 2m in streaming).",
        )
        parser.add_argument(
            "--early_count",
            type=int,
            default=None,
            help="Streaming: fire an early window pane every N pings of a shipment.",
        )


def thresholds(options: PipelineOptions) -> tuple[float, float]:
    """``(late_threshold, horizon)`` in seconds: the flags, or the mode's defaults."""
    sc, hf = options.view_as(SupplyChainOptions), options.view_as(HybridflowOptions)
    late, horizon = MODE_THRESHOLDS[hf.mode]
    return (late if sc.late_threshold is None else sc.late_threshold,
            horizon if sc.horizon is None else sc.horizon)


def validate(options: PipelineOptions) -> None:
    sc, hf = options.view_as(SupplyChainOptions), options.view_as(HybridflowOptions)
    for flag, value in (("late_threshold", sc.late_threshold), ("horizon", sc.horizon)):
        if value is not None and not 0 <= value < math.inf:
            raise InvalidOptionError(f"--{flag}={value}: must be a finite duration >= 0 (e.g. 30m)")
    if sc.early_count is not None and sc.early_count < 1:
        raise InvalidOptionError(f"--early_count={sc.early_count}: must be >= 1")
    check_side_inputs(options, "the shipment plans and stock levels")
    check_window(hf.window)
    if not isinstance(window_spec(hf.window), FixedWindow):
        raise InvalidOptionError(
            f"--window={hf.window}: supply_chain needs a fixed window (e.g. fixed:15m), so that each shipment "
            "counts once in its item-location's window"
        )
    check_inputs({"input": hf.input, "plans": sc.plans, "history": sc.history})


def _with_params(uri: str, extra: dict) -> str:
    if not extra:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{urllib.parse.urlencode(extra)}"


def inherit_network(uri: str, input_uri: str) -> str:
    """A synthetic plans or history ``uri`` with the network parameters (and
    ``start``) of a synthetic truck-pings ``input_uri`` it does not set itself."""
    source, target = parse_uri(input_uri), parse_uri(uri)
    if source.scheme != "synthetic" or source.netloc != SyntheticTruckPings.stream or target.scheme != "synthetic":
        return uri
    return _with_params(uri, {k: source.params[k] for k in NETWORK_PARAMS
                              if k in source.params and k not in target.params})


def _live_input(uri: str) -> str:
    """A synthetic streaming input with its ``start`` pinned to now (the
    plans' departure and ETAs are relative to it)."""
    endpoint = parse_uri(uri)
    if endpoint.scheme != "synthetic" or "start" in endpoint.params:
        return uri
    return _with_params(uri, {"start": event_text(float(int(time.time())))})


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the supply_chain graph; returns its outputs by name."""
    hf, sc = options.view_as(HybridflowOptions), options.view_as(SupplyChainOptions)
    batch = hf.mode == "batch"
    input_uri = hf.input if batch else _live_input(hf.input)
    late_threshold, horizon = thresholds(options)
    parsed = read_records(p, "Pings", input_uri if batch else stream_uri(input_uri, hf.duration), TruckPing,
                          options, bounded=batch, columnar=False)
    plans = read_records(p, "Plans", inherit_network(sc.plans, input_uri), ShipmentPlan, options, bounded=True,
                         timestamp_field=None, columnar=False)
    history = read_records(p, "History", inherit_network(sc.history, input_uri), StockSnapshot, options,
                           bounded=True, columnar=False)
    stock = history.records | "BuildStockLevels" >> BuildStockLevels()
    scored = parsed.records | "Score" >> ScoreShipments(
        plans.records,
        stock.records,
        window=hf.window,
        late_threshold=late_threshold,
        horizon=horizon,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
        early_count=sc.early_count,
    )
    dead_letters = (parsed.dead_letters, plans.dead_letters, history.dead_letters, stock.dead_letters,
                    scored["dead_letters"])
    return {
        "alerts": scored["alerts"],
        "shipments": scored["shipments"],
        "stock_risk": scored["stock"],
        "stock_levels": stock.records,
        "late": scored["late"],
        "dead_letters": dead_letters | "AllDeadLetters" >> beam.Flatten(),
    }


def sinks(options: PipelineOptions) -> dict[str, str]:
    return file_sinks(options, formatted=("alerts", "shipments", "stock_risk"), parquet=("stock_levels",),
                      jsonl=("dead_letters", "late"))


SPEC = PipelineSpec(
    name="supply_chain",
    description="Supply chain: batch stock levels and demand per item-location from snapshots + ETA deviation "
    "per shipment from truck telemetry and stock-out risk per item-location on fixed windows",
    build=build,
    sinks=sinks,
    options_class=SupplyChainOptions,
    common=(
        "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
        "timestamp_unit", "print_alerts",
    ),
    defaults=DEFAULTS,
    validate=validate,
    generators=(SyntheticTruckPings, SyntheticShipmentPlans, SyntheticStockSnapshots),
    report=report_sections,
)
