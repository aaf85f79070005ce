"""Running a registered pipeline and summarising the run."""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    SparkRunnerOptions,
    StandardOptions,
)

from hybridflow.flex.package import stage_hybridflow
from hybridflow.io import WriteTo
from hybridflow.io.options import sink_overrides
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


class _PrintAlertFn(beam.DoFn):
    """Writes one line per alert to the worker's stdout, at once."""

    def process(self, alert):
        import sys

        event_time = getattr(alert, "event_time", None)
        when = event_time.to_rfc3339() if hasattr(event_time, "to_rfc3339") else str(event_time)
        sys.stdout.write(f"ALERT {when}  {getattr(alert, 'message', alert)}\n")
        sys.stdout.flush()


def construct(p: beam.Pipeline, spec: PipelineSpec, options: PipelineOptions) -> dict[str, str]:
    """Builds ``spec`` into ``p`` and adds its sinks (``--sink`` overrides the
    pipeline's own per output); returns output locations.

    With ``--print_alerts``, an ``alerts`` output is also printed line by line
    as alerts are raised (``ALERT <event time>  <message>``); with
    ``--alerts_webhook`` alerts are also posted there.
    """
    outputs = deliver_alerts(spec.build(p, options), options)  # --alerts_webhook
    if options.view_as(HybridflowOptions).print_alerts and "alerts" in outputs:
        outputs["alerts"] | "PrintAlerts" >> beam.ParDo(_PrintAlertFn())
    sinks = {name: [uri] for name, uri in spec.sinks(options).items()}
    sinks.update(sink_overrides(options, outputs))
    locations = {}
    for name, uris in sinks.items():
        if name not in outputs:
            continue
        label = f"Write{name.title().replace('_', '')}"
        written = []
        for i, uri in enumerate(uris):
            sink = WriteTo(uri)
            outputs[name] | (label if i == 0 else f"{label}{i + 1}") >> sink
            written.append(sink.location)
        locations[name] = ", ".join(written)
    return locations


def run_pipeline(spec: PipelineSpec, options: PipelineOptions, wait: bool = True) -> RunSummary:
    """Builds and runs ``spec`` with ``options``; waits and summarises."""
    started = time.monotonic()
    # read before running: portable runners clear --runner in the options they run
    requested = options.view_as(StandardOptions).runner or "DirectRunner"
    requested = requested if isinstance(requested, str) else type(requested).__name__
    stage_hybridflow(options)  # on Dataflow: the workers get hybridflow's wheel unless their image has it
    p = beam.Pipeline(options=options)
    locations = construct(p, spec, options)
    with JobMonitor(spec.name, options, runner=requested) as monitor:  # --metrics_port, --deadline ...
        result = p.run()
        names = monitor.attach(result, p)
        state = result.wait_until_finish() if wait else result.state
        summary = RunSummary(
            pipeline=spec.name,
            mode=options.view_as(HybridflowOptions).mode,
            runner=_engine(result, options, requested.rsplit(".", 1)[-1]),
            state=str(state),
            outputs=locations,
            metrics=query_counters(result, names),
            wall_seconds=time.monotonic() - started,
        )
        monitor.finish(summary)
    return summary


def _engine(result, options, requested: str) -> str:
    """The runner asked for and the engine that really ran it, e.g.
    ``FlinkRunner (Flink 1.19, local mini-cluster)``, ``DirectRunner (FnApiRunner)``
    (Beam's DirectRunner picks one of three engines by itself)."""
    if "Dataflow" in requested:
        return requested  # the job runs (or, with --dry_run, would run) on Dataflow
    kind = type(result).__name__
    if requested == "FlinkRunner":
        flink = options.view_as(FlinkRunnerOptions)
        master = flink.flink_master or "[auto]"
        where = "local mini-cluster" if master in ("[local]", "[auto]") else master
        return f"FlinkRunner (Flink {flink.flink_version}, {where})"
    if requested == "SparkRunner":
        spark = options.view_as(SparkRunnerOptions)
        return f"SparkRunner (Spark {spark.spark_version}, {spark.spark_master_url})"
    engine = {
        "RunnerResult": "FnApiRunner",
        "DirectPipelineResult": "BundleBasedDirectRunner",
        "PipelineResult": "PortableRunner",
    }.get(kind, kind)
    # a portable result from DirectRunner or PrismRunner means Prism ran it
    portable_direct = requested.replace("Runner", "") in ("Direct", "SwitchingDirect", "Prism")
    if "Prism" in kind or (kind == "PipelineResult" and portable_direct):
        engine = "Prism"
    return requested if requested == engine else f"{requested} ({engine})"
