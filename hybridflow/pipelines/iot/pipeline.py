"""iot: predictive maintenance of a machine fleet, hybrid batch + streaming.

Batch layer: from a history of sensor readings, a baseline per machine (count,
mean and standard deviation of temperature and vibration,
:mod:`~hybridflow.pipelines.iot.baselines`).

Scoring, the same transforms in both modes
(:mod:`~hybridflow.pipelines.iot.scoring`): parse + validate (dead letters)
-> per reading, its model's limits and the over-limit rules -> per machine,
sliding windows of each sensor, joined with the machine's baseline -> drift
rules (z-score of the window mean) -> alerts, with a cooldown -> a
maintenance batch job launched per alert (``LaunchOnAlert`` per machine: once
per rule, machine and window, then not again within ``--maintenance_cooldown``).

``--mode batch`` scores a bounded input; ``--mode streaming`` an unbounded one.
Both compare with baselines from ``--history`` (default: a synthetic history
of the same fleet, without wear).
"""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.launchers import SubprocessLauncher
from hybridflow.metrics import counter
from hybridflow.options import HybridflowOptions, duration_arg
from hybridflow.pipelines import PipelineParameters, PipelineSpec
from hybridflow.pipelines.building import (
    check_inputs, check_side_inputs, check_window, file_sinks, read_records, stream_uri
)
from hybridflow.pipelines.iot.baselines import BuildBaselines
from hybridflow.pipelines.iot.generator import SyntheticReadings
from hybridflow.pipelines.iot.records import MODEL_LIMITS, ModelLimits, SensorReading
from hybridflow.pipelines.iot.report import report_sections
from hybridflow.pipelines.iot.scoring import ScoreReadings
from hybridflow.transforms.launch import LaunchOnAlert

__all__ = ["IotOptions", "build", "sinks", "validate", "SPEC"]

_FLEET = "population=42&machines=40"
#: ten hours of a healthy fleet (a reading per machine every 10 s)
DEFAULT_HISTORY = f"synthetic://readings?count=14400&rate=4&seed=1&{_FLEET}&drifting=0"
DEFAULTS = {
    "batch": {
        # 2.5 hours, the wear of a tenth of the machines starting after one
        "input": f"synthetic://readings?count=36000&rate=4&seed=2&{_FLEET}",
        "output": "output/iot",
        "output_format": "jsonl",
        "window": "sliding:10m/2m",
        "allowed_lateness": 300.0,
        "cooldown": 1800.0,
        "print_alerts": False,
    },
    "streaming": {
        # 20 readings a second; an hour of wear per minute after the first 30 s
        "input": f"synthetic://readings?rate=20&seed=7&{_FLEET}&drift_after=30&wear=60",
        "output": "output/iot-streaming",
        "output_format": "jsonl",
        "window": "sliding:1m/20s",
        "allowed_lateness": 60.0,
        "cooldown": 300.0,
        "print_alerts": True,
    },
}
MAINTENANCE = ("none", "dry_run", "local")


class IotOptions(PipelineParameters):
    """Parameters of the iot pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--history",
            default=DEFAULT_HISTORY,
            help="Bounded history of readings to compute the per-machine baselines from.",
        )
        parser.add_argument(
            "--limits",
            default=None,
            help="Model limits (JSON lines / Parquet / CSV of model, max_temperature, max_vibration); "
            "default: the built-in catalogue of the generator's models.",
        )
        parser.add_argument(
            "--zscore_threshold",
            type=float,
            default=3.0,
            help="Drift: alert when a window mean is this many of the machine's standard deviations "
            "above its baseline mean.",
        )
        parser.add_argument(
            "--min_history",
            type=int,
            default=30,
            help="Drift rules apply only to machines with at least this many readings in the history.",
        )
        parser.add_argument(
            "--early_count",
            type=int,
            default=None,
            help="Streaming: fire an early window pane every N readings of a machine.",
        )
        parser.add_argument(
            "--maintenance",
            choices=MAINTENANCE,
            default="dry_run",
            help="The maintenance job an alert launches (a batch run of iot for that machine): none, "
            "dry_run (its command is recorded in `launches`, not run) or local (run here and waited for).",
        )
        parser.add_argument(
            "--maintenance_cooldown",
            type=duration_arg,
            default=3600.0,
            help="Event time after a maintenance launch for a machine and rule during which that rule "
            "launches no other for that machine.",
        )
        parser.add_argument(
            "--machine",
            default=None,
            help="Score only this machine (what a maintenance job runs); the other readings are "
            "counted in `filtered`.",
        )


def validate(options: PipelineOptions) -> None:
    io = options.view_as(IotOptions)
    hf = options.view_as(HybridflowOptions)
    if not 0 < io.zscore_threshold < math.inf:  # nan fails too
        raise InvalidOptionError(
            f"--zscore_threshold={io.zscore_threshold}: must be a finite number > 0 (standard deviations, e.g. 3)"
        )
    if io.min_history < 0:
        raise InvalidOptionError(f"--min_history={io.min_history}: must be >= 0")
    if io.early_count is not None and io.early_count < 1:
        raise InvalidOptionError(f"--early_count={io.early_count}: must be >= 1")
    check_side_inputs(options, "the machine baselines and model limits")
    check_window(hf.window)
    check_inputs({"input": hf.input, "history": io.history, "limits": io.limits})


# --------------------------------------------------------------------------
# Graph


class _OnlyMachine(beam.DoFn):
    """Keeps the readings of one machine; the others are counted in ``filtered``."""

    def __init__(self, machine_id: str):
        self._machine_id = machine_id

    def setup(self):
        self._filtered = counter("filtered")

    def process(self, reading):
        if reading.machine_id == self._machine_id:
            yield reading
        else:
            self._filtered.inc()


def _maintenance_launcher(options: PipelineOptions) -> SubprocessLauncher:
    """``hybridflow run iot`` in batch over the alerted machine's readings
    (the batch input, or in streaming the history), under ``--output``."""
    hf, io = options.view_as(HybridflowOptions), options.view_as(IotOptions)
    readings = hf.input if hf.mode == "batch" else io.history
    args = [
        "--mode=batch", f"--input={readings}", f"--history={io.history}", "--machine={key}",
        "--maintenance=none", f"--output={hf.output.rstrip('/')}/maintenance/{{launch_id}}",
    ]
    if io.limits:
        args.append(f"--limits={io.limits}")
    return SubprocessLauncher("iot", args, dry_run=io.maintenance == "dry_run")


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the iot graph; returns its outputs by name."""
    hf, io = options.view_as(HybridflowOptions), options.view_as(IotOptions)
    batch = hf.mode == "batch"
    parsed = read_records(p, "Readings", hf.input if batch else stream_uri(hf.input, hf.duration),
                          SensorReading, options, bounded=batch, columnar=False)
    history = read_records(p, "History", io.history, SensorReading, options, bounded=True, columnar=False)
    dead_letters = [parsed.dead_letters, history.dead_letters]
    readings, past = parsed.records, history.records
    if io.machine:
        readings = readings | "OnlyMachine" >> beam.ParDo(_OnlyMachine(io.machine)).with_output_types(SensorReading)
        past = past | "OnlyMachineHistory" >> beam.ParDo(_OnlyMachine(io.machine)).with_output_types(SensorReading)
    if io.limits:
        limit_rows = read_records(p, "Limits", io.limits, ModelLimits, options, bounded=True, timestamp_field=None,
                                  columnar=False)
        limits = limit_rows.records
        dead_letters.append(limit_rows.dead_letters)
    else:
        limits = p | "ModelLimits" >> beam.Create(MODEL_LIMITS).with_output_types(ModelLimits)

    baselines = past | "BuildBaselines" >> BuildBaselines()
    scored = readings | "Score" >> ScoreReadings(
        baselines,
        limits,
        window=hf.window,
        zscore_threshold=io.zscore_threshold,
        min_history=io.min_history,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
        early_count=io.early_count,
    )
    dead_letters.append(scored["dead_letters"])
    outputs = {
        "alerts": scored["alerts"],
        "aggregates": scored["aggregates"],
        "baselines": baselines,
        "late": scored["late"],
    }
    if io.maintenance != "none":
        launched = scored["alerts"] | "Maintenance" >> LaunchOnAlert(
            _maintenance_launcher(options), cooldown=io.maintenance_cooldown, per_key=True
        )
        outputs["launches"] = launched.launches
        dead_letters.append(launched.dead_letters)
    outputs["dead_letters"] = tuple(dead_letters) | "AllDeadLetters" >> beam.Flatten()
    return outputs


def sinks(options: PipelineOptions) -> dict[str, str]:
    launches = ("launches",) if options.view_as(IotOptions).maintenance != "none" else ()
    return file_sinks(options, formatted=("alerts", "aggregates"), parquet=("baselines",),
                      jsonl=("dead_letters", "late") + launches)


SPEC = PipelineSpec(
    name="iot",
    description="IoT predictive maintenance: batch per-machine baselines from history + drift and "
    "model-limit alerts on sliding windows of sensor readings, a maintenance job launched per alert",
    build=build,
    sinks=sinks,
    options_class=IotOptions,
    common=(
        "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
        "timestamp_unit", "print_alerts",
    ),
    defaults=DEFAULTS,
    validate=validate,
    generators=(SyntheticReadings,),
    report=report_sections,
)
