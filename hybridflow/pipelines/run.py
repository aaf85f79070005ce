"""Running a registered pipeline and summarising the run."""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from hybridflow.io import WriteTo
from hybridflow.metrics import MetricsSnapshot, query_counters
from hybridflow.monitoring.job import JobMonitor, deliver_alerts
from hybridflow.options import HybridflowOptions
from hybridflow.pipelines import PipelineSpec

__all__ = ["RunSummary", "run_pipeline", "construct"]


@dataclasses.dataclass
class RunSummary:
    """What a run did: counts from Beam metrics, where outputs went, how long."""

    pipeline: str
    mode: str
    runner: str
    state: str
    outputs: Mapping[str, str]
    metrics: MetricsSnapshot
    wall_seconds: float
    deadline_exceeded: bool = False

    @property
    def exit_code(self) -> int:
        """0 done, 1 failed or cancelled, 3 done but past ``--deadline``."""
        from hybridflow.monitoring.job import DEADLINE_EXIT_CODE

        if not self.state.endswith("DONE"):
            return 1
        return DEADLINE_EXIT_CODE if self.deadline_exceeded else 0

    @property
    def records_read(self) -> int:
        return self.metrics.get("records_read")

    @property
    def records_written(self) -> int:
        return self.metrics.get("records_written")

    @property
    def dead_letters(self) -> int:
        return self.metrics.get("dead_letters")

    def render(self) -> str:
        m = self.metrics
        lines = [
            f"pipeline {self.pipeline} ({self.mode}) on {self.runner}: {self.state} in {self.wall_seconds:.1f}s",
            f"  records read     {self.records_read}",
            f"  records written  {self.records_written}",
            f"  dead letters     {self.dead_letters}"
            + (
                " (" + ", ".join(f"{k}={v}" for k, v in sorted(m.prefixed("dead_letters.").items())) + ")"
                if m.prefixed("dead_letters.")
                else ""
            ),
            f"  late records     {m.get('late_records')}",
            f"  alerts           {m.get('alerts') - m.get('alerts_suppressed')}",
        ]
        if self.deadline_exceeded:
            lines.append("  DEADLINE EXCEEDED (exit code 3)")
        lines += [
            "  outputs:",
        ]
        lines += [f"    {name:<13} {location}" for name, location in self.outputs.items()]
        return "\n".join(lines)


def construct(p: beam.Pipeline, spec: PipelineSpec, options: PipelineOptions) -> dict[str, str]:
    """Builds ``spec`` into ``p`` and adds its sinks; returns output locations."""
    outputs = deliver_alerts(spec.build(p, options), options)  # --alerts_webhook
    locations = {}
    for name, uri in spec.sinks(options).items():
        if name not in outputs:
            continue
        sink = WriteTo(uri)
        outputs[name] | f"Write{name.title().replace('_', '')}" >> sink
        locations[name] = sink.location
    return locations


def run_pipeline(spec: PipelineSpec, options: PipelineOptions, wait: bool = True) -> RunSummary:
    """Builds and runs ``spec`` with ``options``; waits and summarises."""
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    locations = construct(p, spec, options)
    with JobMonitor(spec.name, options, runner=_requested(options)) as monitor:  # --metrics_port, --deadline ...
        result = p.run()
        names = monitor.attach(result, p)
        state = result.wait_until_finish() if wait else result.state
        summary = RunSummary(
            pipeline=spec.name,
            mode=options.view_as(HybridflowOptions).mode,
            runner=_engine(result, options),
            state=str(state),
            outputs=locations,
            metrics=query_counters(result, names),
            wall_seconds=time.monotonic() - started,
        )
        monitor.finish(summary)
    return summary


def _requested(options) -> str:
    return str(options.view_as(StandardOptions).runner or "DirectRunner")


def _engine(result, options) -> str:
    """The runner that really ran (DirectRunner picks one of three engines)."""
    requested = str(options.view_as(StandardOptions).runner or "DirectRunner")
    if "Dataflow" in requested:
        return requested  # the job runs (or, with --dry_run, would run) on Dataflow
    kind = type(result).__name__
    engine = {
        "RunnerResult": "FnApiRunner",
        "DirectPipelineResult": "BundleBasedDirectRunner",
        "PipelineResult": "PortableRunner",
    }.get(kind, kind)
    # a portable result from DirectRunner or PrismRunner means Prism ran it
    if kind == "PipelineResult" and requested.replace("Runner", "") in ("Direct", "SwitchingDirect", "Prism"):
        engine = "Prism"
    if requested.replace("Runner", "") == engine.replace("Runner", ""):
        return requested
    return f"{requested} ({engine})"
