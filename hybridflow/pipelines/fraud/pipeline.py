"""fraud: card-fraud detection, hybrid batch + streaming.

Batch layer: from a history of transactions, a spending profile per card
(count, mean and standard deviation of the amount, usual countries, last
seen), written as Parquet (:mod:`~hybridflow.pipelines.fraud.profiles`).

Scoring, the same transforms in both modes: parse + validate (dead letters)
-> enrich each transaction with its card profile -> per-transaction rules
(amount z-score against the profile, a country new for the card) -> sliding
windows of spend and count per card -> velocity rule -> alerts
(:mod:`~hybridflow.pipelines.fraud.scoring`).

``--mode batch`` scores the input history against profiles built from it (or
from ``--profiles``); ``--mode streaming`` scores an unbounded input against
profiles from ``--profiles`` or built from a bounded ``--history``;
``--mode hybrid`` builds the profiles from ``--history`` and scores the
history, then the live stream (``--live``), in one job: windows and cooldowns
are warm when the live records arrive (:class:`~hybridflow.io.hybrid.HybridRead`).
"""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import HybridflowOptions, duration_arg
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import (
    can_read_columnar,
    check_inputs,
    check_side_inputs,
    check_window,
    file_sinks,
    read_hybrid,
    read_records,
    runner_name,
    stream_uri,
)
from hybridflow.pipelines.fraud.generator import SyntheticTransactions
from hybridflow.pipelines.fraud.profiles import BuildCardProfiles
from hybridflow.pipelines.fraud.records import CardProfile, Transaction
from hybridflow.pipelines.fraud.report import report_sections
from hybridflow.pipelines.fraud.scoring import ScoreTransactions

__all__ = ["FraudOptions", "build", "sinks", "validate", "SPEC"]

_POPULATION = "seed=42&population=42&cards=2000"
DEFAULTS = {
    "batch": {
        "input": f"synthetic://transactions?count=40000&{_POPULATION}",
        "output": "output/fraud",
        "output_format": "jsonl",
        "window": "sliding:5m/1m",
        "allowed_lateness": 300.0,
        "cooldown": 600.0,
        "print_alerts": False,
    },
    "streaming": {
        "input": "synthetic://transactions?rate=20&seed=7&population=42&cards=2000&fraud=0.01",
        "output": "output/fraud-streaming",
        "output_format": "jsonl",
        "window": "sliding:5m/1m",
        "allowed_lateness": 300.0,
        "cooldown": 600.0,
        # alerts are printed as they are raised: a streaming run shows them live
        "print_alerts": True,
    },
    "hybrid": {
        "output": "output/fraud-hybrid",
        "output_format": "jsonl",
        "window": "sliding:5m/1m",
        "allowed_lateness": 300.0,
        "cooldown": 600.0,
        "print_alerts": False,
    },
}
DEFAULT_STREAMING_HISTORY = f"synthetic://transactions?count=40000&{_POPULATION}"


class FraudOptions(PipelineParameters):
    """Parameters of the fraud pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--history",
            default=None,
            help="Bounded transaction history to build card profiles from "
            "(batch: defaults to --input; streaming: a built-in synthetic history; hybrid: required, and "
            "scored before --live).",
        )
        parser.add_argument(
            "--profiles",
            default=None,
            help="Precomputed card profiles (Parquet/JSONL written by a batch run); overrides --history.",
        )
        parser.add_argument(
            "--velocity_threshold",
            type=int,
            default=10,
            help="Alert when a card has at least this many transactions in one window.",
        )
        parser.add_argument(
            "--zscore_threshold",
            type=float,
            default=4.0,
            help="Alert when an amount is this many standard deviations above the card's mean.",
        )
        parser.add_argument(
            "--min_history",
            type=int,
            default=5,
            help="Profile rules apply only to cards with at least this many past transactions.",
        )
        parser.add_argument(
            "--early_count",
            type=int,
            default=None,
            help="Streaming: fire an early window pane every N transactions of a card.",
        )
        parser.add_argument(
            "--early_every",
            type=duration_arg,
            default=None,
            help="Streaming: fire early window panes every so often (processing time, e.g. 10s; "
            "not on Flink, whose runner does not fire these timers).",
        )
        parser.add_argument(
            "--usual_country_share",
            type=float,
            default=0.1,
            help="A country is usual for a card if at least this share of its history is there.",
        )


def validate(options: PipelineOptions) -> None:
    fo = options.view_as(FraudOptions)
    hf = options.view_as(HybridflowOptions)
    if fo.velocity_threshold < 1:
        raise InvalidOptionError(f"--velocity_threshold={fo.velocity_threshold}: must be >= 1")
    if not 0 < fo.zscore_threshold < math.inf:  # nan fails too
        raise InvalidOptionError(
            f"--zscore_threshold={fo.zscore_threshold}: must be a finite number > 0 (standard deviations, e.g. 4)"
        )
    if not 0 < fo.usual_country_share <= 1:
        raise InvalidOptionError(f"--usual_country_share={fo.usual_country_share}: must be in (0, 1]")
    if fo.min_history < 0:
        raise InvalidOptionError(f"--min_history={fo.min_history}: must be >= 0")
    runner = runner_name(options)
    if fo.early_every is not None and hf.mode == "streaming" and runner == "FlinkRunner":
        raise InvalidOptionError(
            "--early_every needs processing-time timers, which Beam's Flink runner does not fire for this "
            "pipeline (no early pane, and the job never ends); use --early_count=N, or another runner"
        )
    if hf.mode == "hybrid":
        if hf.input:
            raise InvalidOptionError("--input is not read in --mode=hybrid: give the history as --history and the "
                                     "stream as --live")
        if not fo.history or not hf.live:
            raise InvalidOptionError("--mode=hybrid needs --history=FILES and --live=kafka://HOST:PORT/TOPIC")
    check_side_inputs(options, "the card profiles")
    check_window(hf.window)
    check_inputs({"input": hf.input, "history": fo.history, "profiles": fo.profiles, "live": hf.live})


# --------------------------------------------------------------------------
# Graph


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the fraud graph; returns its outputs by name."""
    hf = options.view_as(HybridflowOptions)
    fo = options.view_as(FraudOptions)
    batch = hf.mode == "batch"
    if hf.mode == "hybrid":  # the history, then the live stream: one unbounded PCollection
        parsed = read_hybrid(p, fo.history, Transaction, options, id_field="txn_id")
        columnar = False
    else:
        input_uri = hf.input if batch else stream_uri(hf.input, hf.duration)
        # Bounded JSON-lines / Parquet input runs columnar (Arrow tables, vectorized
        # transforms); the results are the per-element path's (hybridflow.columnar).
        columnar = batch and can_read_columnar(options, input_uri)
        parsed = read_records(p, "Transactions", input_uri, Transaction, options, bounded=batch, columnar=columnar)
    dead_letters = [parsed.dead_letters]
    outputs: dict[str, Any] = {}

    if fo.profiles:
        profile_rows = read_records(
            p, "Profiles", fo.profiles, CardProfile, options, bounded=True, timestamp_field=None,
            columnar=columnar and can_read_columnar(options, fo.profiles),
        )
        profiles = profile_rows.records
        dead_letters.append(profile_rows.dead_letters)
    else:
        if hf.mode == "hybrid":  # the history HybridRead parsed (its dead letters are in parsed's)
            history = parsed.history
        elif batch and not fo.history:
            history = parsed.records
        else:
            history_rows = read_records(
                p, "History", fo.history or DEFAULT_STREAMING_HISTORY, Transaction, options, bounded=True
            )
            history = history_rows.records
            dead_letters.append(history_rows.dead_letters)
        profiles = history | "BuildProfiles" >> BuildCardProfiles(fo.usual_country_share)
        outputs["profiles"] = profiles

    scored = parsed.records | "Score" >> ScoreTransactions(
        profiles,
        window=hf.window,
        velocity_threshold=fo.velocity_threshold,
        zscore_threshold=fo.zscore_threshold,
        min_history=fo.min_history,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
        early_count=fo.early_count,
        early_every=fo.early_every,
    )
    dead_letters.append(scored["dead_letters"])
    outputs["alerts"] = scored["alerts"]
    outputs["aggregates"] = scored["aggregates"]
    outputs["late"] = scored["late"]
    outputs["dead_letters"] = tuple(dead_letters) | "AllDeadLetters" >> beam.Flatten()
    return outputs


def sinks(options: PipelineOptions) -> dict[str, str]:
    return file_sinks(options, formatted=("alerts", "aggregates"), parquet=("profiles",), jsonl=("dead_letters", "late"))


SPEC = PipelineSpec(
    name="fraud",
    description="Card fraud: batch card profiles from history + scoring of transactions (z-score, new country, velocity)",
    build=build,
    sinks=sinks,
    options_class=FraudOptions,
    common=(
        "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
        "timestamp_unit", "columnar", "print_alerts", "live", "boundary", "seam_horizon",
    ),
    defaults=DEFAULTS,
    modes=("batch", "streaming", "hybrid"),
    validate=validate,
    generators=(SyntheticTransactions,),
    report=report_sections,
)
