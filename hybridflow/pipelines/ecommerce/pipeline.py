"""ecommerce: a shop's clickstream and orders, hybrid batch + streaming.

Batch layer: from a history of shop events, the demand profile of each
product per hour of day and its reorder point
(:mod:`~hybridflow.pipelines.ecommerce.demand`).

Scoring, the same transforms in both modes
(:mod:`~hybridflow.pipelines.ecommerce.scoring`): parse + validate (dead
letters) -> session windows per user -> abandoned carts; orders per product
and hour joined with the profile of that hour of day -> demand spikes and
drops; each order's stock left against the product's reorder point -> low
stock.

``--mode batch`` scores a bounded input; ``--mode streaming`` an unbounded
one. Both use the enrichment computed from ``--history`` at the start
(default: a synthetic history of the same catalogue, without a surge).
"""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import HybridflowOptions, duration_arg
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import check_inputs, check_side_inputs, check_window, file_sinks, read_records, stream_uri
from hybridflow.pipelines.ecommerce.demand import BuildDemandProfile
from hybridflow.pipelines.ecommerce.generator import SyntheticShop
from hybridflow.pipelines.ecommerce.records import ShopEvent
from hybridflow.pipelines.ecommerce.report import report_sections
from hybridflow.pipelines.ecommerce.scoring import ScoreShopEvents
from hybridflow.transforms.windows import SessionWindow, window_spec

__all__ = ["EcommerceOptions", "build", "sinks", "validate", "SPEC"]

_SHOP = "population=42&products=12"
#: four days of the shop without a surge (an event every 10 s)
DEFAULT_HISTORY = f"synthetic://shop?count=34560&rate=0.1&seed=1&{_SHOP}"
DEFAULTS = {
    "batch": {
        # the day after the history; product p002 is promoted from noon: 4x the demand, its stock running out
        "input": f"synthetic://shop?count=8640&rate=0.1&seed=2&{_SHOP}&start=2026-01-05T00:00:00Z&surge=4&surge_after=12h",
        "output": "output/ecommerce",
        "output_format": "jsonl",
        "window": "session:30m",
        "allowed_lateness": 900.0,
        "cooldown": 3600.0,
        "print_alerts": False,
    },
    "streaming": {
        # 20 events a second, 50 shoppers at a time; stock restocked every 2 minutes, p002 promoted after 20 s
        "input": f"synthetic://shop?rate=20&seed=7&{_SHOP}&shoppers=50&surge=4&surge_after=20&restock=2m",
        "output": "output/ecommerce-streaming",
        "output_format": "jsonl",
        "window": "session:30s",
        "allowed_lateness": 60.0,
        "cooldown": 300.0,
        "print_alerts": True,
    },
}


class EcommerceOptions(PipelineParameters):
    """Parameters of the ecommerce pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--history",
            default=DEFAULT_HISTORY,
            help="Bounded history of shop events to compute the demand profiles and reorder points from.",
        )
        parser.add_argument(
            "--lead_time",
            type=duration_arg,
            default=4 * 3600.0,
            help="How long a restock takes: a product's reorder point is its usual demand over this time "
            "(4h by default).",
        )
        parser.add_argument(
            "--min_cart_value",
            type=float,
            default=0.0,
            help="An abandoned cart (a session with add_to_cart and no checkout) raises an alert when worth "
            "more than this.",
        )
        parser.add_argument(
            "--spike_zscore",
            type=float,
            default=3.0,
            help="Demand spike: a product's units in an hour this many standard deviations above its usual "
            "units for that hour of day.",
        )
        parser.add_argument(
            "--drop_ratio",
            type=float,
            default=0.25,
            help="Demand drop: a product's units in an hour under this share of its usual units for that hour "
            "of day (0 turns the rule off).",
        )
        parser.add_argument(
            "--min_history",
            type=int,
            default=3,
            help="Demand rules judge an hour of day only when the history has this many hours of it with orders.",
        )


def validate(options: PipelineOptions) -> None:
    ec = options.view_as(EcommerceOptions)
    hf = options.view_as(HybridflowOptions)
    if not 0 < ec.lead_time < math.inf:
        raise InvalidOptionError(f"--lead_time={ec.lead_time}: must be a duration > 0 (e.g. 4h)")
    if not 0 <= ec.min_cart_value < math.inf:
        raise InvalidOptionError(f"--min_cart_value={ec.min_cart_value}: must be a finite number >= 0")
    if not 0 < ec.spike_zscore < math.inf:
        raise InvalidOptionError(
            f"--spike_zscore={ec.spike_zscore}: must be a finite number > 0 (standard deviations, e.g. 3)"
        )
    if not 0 <= ec.drop_ratio < 1:
        raise InvalidOptionError(f"--drop_ratio={ec.drop_ratio}: must be a share from 0 (off) to under 1, e.g. 0.25")
    if ec.min_history < 1:
        raise InvalidOptionError(f"--min_history={ec.min_history}: must be >= 1")
    check_side_inputs(options, "the demand profiles and reorder points")
    check_window(hf.window)
    if not isinstance(window_spec(hf.window), SessionWindow):
        raise InvalidOptionError(
            f"--window={hf.window}: the ecommerce pipeline windows each user's events by session; "
            "use session:GAP (e.g. session:30m)"
        )
    check_inputs({"input": hf.input, "history": ec.history})


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the ecommerce graph; returns its outputs by name."""
    hf, ec = options.view_as(HybridflowOptions), options.view_as(EcommerceOptions)
    batch = hf.mode == "batch"
    parsed = read_records(p, "Events", hf.input if batch else stream_uri(hf.input, hf.duration),
                          ShopEvent, options, bounded=batch, columnar=False)
    history = read_records(p, "History", ec.history, ShopEvent, options, bounded=True, columnar=False)
    enrichment = history.records | "BuildDemandProfile" >> BuildDemandProfile(lead_time_hours=ec.lead_time / 3600.0)
    scored = parsed.records | "Score" >> ScoreShopEvents(
        enrichment["demand_profile"],
        enrichment["reorder_points"],
        session=hf.window,
        min_cart_value=ec.min_cart_value,
        spike_zscore=ec.spike_zscore,
        drop_ratio=ec.drop_ratio,
        min_history=ec.min_history,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
    )
    return {
        "alerts": scored["alerts"],
        "sessions": scored["sessions"],
        "demand": scored["demand"],
        "demand_profile": enrichment["demand_profile"],
        "reorder_points": enrichment["reorder_points"],
        "late": scored["late"],
        "dead_letters": (parsed.dead_letters, history.dead_letters, scored["dead_letters"])
        | "AllDeadLetters" >> beam.Flatten(),
    }


def sinks(options: PipelineOptions) -> dict[str, str]:
    return file_sinks(options, formatted=("alerts", "sessions", "demand"),
                      parquet=("demand_profile", "reorder_points"), jsonl=("dead_letters", "late"))


SPEC = PipelineSpec(
    name="ecommerce",
    description="E-commerce clickstream and orders: batch per-product demand profiles (per hour of day) and "
    "reorder points from history + abandoned carts on user sessions, demand spikes/drops per product and hour, "
    "low-stock alerts",
    build=build,
    sinks=sinks,
    options_class=EcommerceOptions,
    common=(
        "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
        "timestamp_unit", "print_alerts",
    ),
    defaults=DEFAULTS,
    validate=validate,
    generators=(SyntheticShop,),
    report=report_sections,
)
