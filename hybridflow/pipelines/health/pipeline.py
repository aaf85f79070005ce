"""health: early warning for deteriorating patients, hybrid batch + streaming.

Batch layer: from a history of bedside observations, a baseline per patient
(count, mean and standard deviation of heart rate, respiration rate and
glucose, mean early-warning score; :mod:`~hybridflow.pipelines.health.baselines`).

Scoring, the same transforms in both modes
(:mod:`~hybridflow.pipelines.health.scoring`): parse + validate (dead
letters, the patient's name, MRN and date of birth masked) -> per
observation, identifying data dropped and the NEWS2 early-warning score
added -> per patient, sliding windows joined with the patient's baseline ->
the urgent-score rule and three drift rules -> alerts, at most one per rule
and patient per ``--cooldown``.

``--mode batch`` scores a bounded input; ``--mode streaming`` an unbounded
one. Both compare with baselines from ``--history`` (default: a synthetic
history of the same patients, none deteriorating).
"""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import HybridflowOptions
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import (
    check_inputs, check_side_inputs, check_window, file_sinks, read_records, stream_uri
)
from hybridflow.pipelines.health.baselines import BuildBaselines
from hybridflow.pipelines.health.generator import SyntheticVitals
from hybridflow.pipelines.health.records import VitalSigns
from hybridflow.pipelines.health.report import report_sections
from hybridflow.pipelines.health.scoring import URGENT_SCORE, ScoreVitals, ScoreWindows

__all__ = ["HealthOptions", "build", "sinks", "validate", "SPEC"]

_WARD = "population=11&patients=40"
#: eight hours of the ward, nobody deteriorating (an observation per patient every 40 s)
DEFAULT_HISTORY = f"synthetic://vitals?count=28800&rate=1&seed=1&{_WARD}&deteriorating=0"
DEFAULTS = {
    "batch": {
        # 3 hours; a tenth of the patients deteriorate from the first hour on
        "input": f"synthetic://vitals?count=21600&rate=2&seed=2&{_WARD}",
        "output": "output/health",
        "output_format": "jsonl",
        "window": "sliding:10m/2m",
        "allowed_lateness": 300.0,
        "cooldown": 1800.0,
        "print_alerts": False,
    },
    "streaming": {
        # 20 observations a second; two hours of deterioration per minute after the first 30 s
        "input": f"synthetic://vitals?rate=20&seed=7&{_WARD}&deteriorate_after=30&pace=120",
        "output": "output/health-streaming",
        "output_format": "jsonl",
        "window": "sliding:1m/20s",
        "allowed_lateness": 60.0,
        "cooldown": 300.0,
        "print_alerts": True,
    },
}


class HealthOptions(PipelineParameters):
    """Parameters of the health pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--history",
            default=DEFAULT_HISTORY,
            help="Bounded history of observations to compute the per-patient baselines from.",
        )
        parser.add_argument(
            "--urgent_score",
            type=float,
            default=URGENT_SCORE,
            help="Alert (early_warning) when a window's mean early-warning score (NEWS2, 0-15) reaches this; "
            "5 is NEWS2's urgent-response level.",
        )
        parser.add_argument(
            "--zscore_threshold",
            type=float,
            default=3.0,
            help="Drift: alert when a window mean of heart rate, respiration rate or glucose is this many of "
            "the patient's standard deviations above their baseline mean.",
        )
        parser.add_argument(
            "--min_history",
            type=int,
            default=30,
            help="Drift rules apply only to patients with at least this many observations in the history.",
        )


def validate(options: PipelineOptions) -> None:
    health = options.view_as(HealthOptions)
    hf = options.view_as(HybridflowOptions)
    if not 0 < health.urgent_score <= 15:  # nan fails too
        raise InvalidOptionError(
            f"--urgent_score={health.urgent_score}: must be a score in (0, 15] (NEWS2 of five parameters, e.g. 5)"
        )
    if not 0 < health.zscore_threshold < math.inf:
        raise InvalidOptionError(
            f"--zscore_threshold={health.zscore_threshold}: must be a finite number > 0 (standard deviations, e.g. 3)"
        )
    if health.min_history < 0:
        raise InvalidOptionError(f"--min_history={health.min_history}: must be >= 0")
    check_side_inputs(options, "the patient baselines")
    check_window(hf.window)
    check_inputs({"input": hf.input, "history": health.history})


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the health graph; returns its outputs by name."""
    hf, health = options.view_as(HybridflowOptions), options.view_as(HealthOptions)
    batch = hf.mode == "batch"
    parsed = read_records(p, "Vitals", hf.input if batch else stream_uri(hf.input, hf.duration),
                          VitalSigns, options, bounded=batch, columnar=False)
    history = read_records(p, "History", health.history, VitalSigns, options, bounded=True, columnar=False)
    scored = parsed.records | "Score" >> ScoreVitals()
    past = history.records | "ScoreHistory" >> ScoreVitals()
    baselines = past | "BuildBaselines" >> BuildBaselines()
    windows = scored | "Windows" >> ScoreWindows(
        baselines,
        window=hf.window,
        urgent_score=health.urgent_score,
        zscore_threshold=health.zscore_threshold,
        min_history=health.min_history,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
    )
    dead_letters = (parsed.dead_letters, history.dead_letters, windows["dead_letters"])
    return {
        "alerts": windows["alerts"],
        "aggregates": windows["aggregates"],
        "baselines": baselines,
        "late": windows["late"],
        "dead_letters": dead_letters | "AllDeadLetters" >> beam.Flatten(),
    }


def sinks(options: PipelineOptions) -> dict[str, str]:
    return file_sinks(options, formatted=("alerts", "aggregates"), parquet=("baselines",),
                      jsonl=("dead_letters", "late"))


SPEC = PipelineSpec(
    name="health",
    description="Patient early warning: batch per-patient baselines from history + NEWS2 early-warning "
    "score and drift alerts on sliding windows of bedside vitals, with a cooldown; PHI masked in dead letters",
    build=build,
    sinks=sinks,
    options_class=HealthOptions,
    common=(
        "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
        "timestamp_unit", "print_alerts", "keep_sensitive",
    ),
    defaults=DEFAULTS,
    validate=validate,
    generators=(SyntheticVitals,),
    report=report_sections,
)
