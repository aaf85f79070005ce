"""Running a registered pipeline and summarising the run.

:func:`run_pipeline` is what ``hybridflow run`` does: build the graph with
:func:`construct` (every sink's failed records join the ``dead_letters``
output), check the input and output locations, run the job, then publish its
file outputs (:mod:`hybridflow.pipelines.outputs`) if it finished, or
discard them if it failed, was cancelled, interrupted, or turned more than
``--max_dead_letter_ratio`` of its records into dead letters. A job's
failure is raised as one :class:`~hybridflow.errors.JobFailedError` line
naming the step and the cause.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    SparkRunnerOptions,
    StandardOptions,
)

from hybridflow.errors import HybridflowError, InvalidOptionError, JobFailedError, SchemaError, TooManyDeadLettersError
from hybridflow.flex.package import stage_hybridflow
from hybridflow.io import WriteTo
from hybridflow.io.options import sink_overrides
from hybridflow.metrics import MetricsSnapshot, query_counters
from hybridflow.monitoring.job import JobMonitor, deliver_alerts, job_summary
from hybridflow.options import HybridflowOptions, RunOptions
from hybridflow.pipelines import PipelineSpec
from hybridflow.pipelines.outputs import RunOutputs
from hybridflow.transforms.dead_letters import DEAD_LETTERS

__all__ = ["RunSummary", "run_pipeline", "construct", "job_failure"]

_LOG = logging.getLogger(__name__)


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
    #: records written per output (the records_written counters of its sinks)
    written: Mapping[str, int] = dataclasses.field(default_factory=dict)
    run_id: str = ""
    #: the ``_SUCCESS`` markers of the published output directories
    published: Sequence[str] = ()

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
        if self.mode == "hybrid":  # HybridRead's counters: each side, and the seam
            wrong = {k: m.get(f"hybrid.{k}") for k in ("history_after_boundary", "live_before_boundary")}
            lines.append(
                f"  hybrid           history {m.get('hybrid.history_records')}, live {m.get('hybrid.live_records')}, "
                f"duplicates removed {m.get('duplicates')}"
                + "".join(f", {k} {v}" for k, v in wrong.items() if v)
            )
        if self.deadline_exceeded:
            lines.append("  DEADLINE EXCEEDED (exit code 3)")
        lines += [
            "  outputs:",
        ]
        lines += [
            f"    {name:<13} {location}" + (f" ({_records(self.written[name])})" if name in self.written else "")
            for name, location in self.outputs.items()
        ]
        if self.published:
            lines.append(f"  published        run {self.run_id}: {', '.join(self.published)}")
        return "\n".join(lines)


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


class _PrintAlertFn(beam.DoFn):
    """Writes one line per alert to the worker's stdout, at once."""

    def process(self, alert):
        import sys

        event_time = getattr(alert, "event_time", None)
        when = event_time.to_rfc3339() if hasattr(event_time, "to_rfc3339") else str(event_time)
        sys.stdout.write(f"ALERT {when}  {getattr(alert, 'message', alert)}\n")
        sys.stdout.flush()


def construct(
    p: beam.Pipeline, spec: PipelineSpec, options: PipelineOptions, outputs: Optional[RunOutputs] = None
) -> dict[str, str]:
    """Builds ``spec`` into ``p`` and adds its sinks (``--sink`` overrides the
    pipeline's own per output); returns output locations.

    Sinks that can fail one record at a time (``WriteTo(...).fails_per_record``:
    webhooks, BigQuery streaming inserts) return those records as dead
    letters; they join the pipeline's ``dead_letters`` output, which is
    written last, by a sink that cannot fail per record (a file sink: if it
    fails, the job fails). With ``outputs``, file sinks write where
    :class:`~hybridflow.pipelines.outputs.RunOutputs` stages them.

    With ``--print_alerts``, an ``alerts`` output is also printed line by line
    as alerts are raised (``ALERT <event time>  <message>``); with
    ``--alerts_webhook`` alerts are also posted there.
    """
    pcolls = deliver_alerts(spec.build(p, options), options)  # --alerts_webhook
    if options.view_as(HybridflowOptions).print_alerts and "alerts" in pcolls:
        pcolls["alerts"] | "PrintAlerts" >> beam.ParDo(_PrintAlertFn())
    sinks = {name: [uri] for name, uri in spec.sinks(options).items()}
    sinks.update(sink_overrides(options, pcolls))
    sinks = {name: uris for name, uris in sinks.items() if name in pcolls}
    locations: dict[str, str] = {}
    failed: list = []
    for name in sorted(sinks, key=lambda n: n == DEAD_LETTERS):  # dead letters last, with the sinks' failures
        pcoll = pcolls[name]
        if name == DEAD_LETTERS and failed:
            pcoll = (pcoll, *failed) | "AddSinkFailures" >> beam.Flatten()
        label = f"Write{name.title().replace('_', '')}"
        written = []
        for i, uri in enumerate(sinks[name]):
            step = label if i == 0 else f"{label}{i + 1}"
            if outputs is not None:
                uri = outputs.stage(name, step, uri, bounded=pcoll.is_bounded)
            sink = WriteTo(uri)
            if sink.fails_per_record and name == DEAD_LETTERS:
                raise InvalidOptionError(
                    f"--sink=dead_letters={uri}: this sink can fail per record and its failures would have "
                    "nowhere to go; write dead letters to files (a path, gs:// or s3://), Kafka or Pub/Sub"
                )
            result = pcoll | step >> sink
            if sink.fails_per_record:
                failed.append(result)
            written.append(outputs.locate(step, sink.location) if outputs is not None else sink.location)
        locations[name] = ", ".join(written)
    if failed and DEAD_LETTERS not in sinks:
        raise SchemaError(
            f"pipeline {spec.name}: a sink that can fail per record needs a dead_letters output to send its "
            "failures to, and this pipeline writes none; give it one (--sink=dead_letters=PATH)"
        )
    return {name: locations[name] for name in sinks}


def _written(metrics: MetricsSnapshot, label: str) -> int:
    """Records written by the sink step ``label``: the ``records_written`` counters inside it."""
    return sum(
        counters.get("records_written", 0)
        for step, counters in metrics.by_step.items()
        if step == label or step.startswith(f"{label}/")
    )


# A line naming an exception: "OSError: [Errno 28] ...", "hybridflow.errors.CorruptInputError: ..."
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit)): (.+)$")
_STEP = re.compile(r" ?\[while running '([^']+)'\]")
_PIPELINE_FAILED = re.compile(r"^Pipeline \S+ failed in state")
_HINTS = (
    (("[Errno 28]", "No space left"), "free space on that device, or write the outputs elsewhere"),
    (("[Errno 13]", "Permission denied"), "fix the permissions, or use another location"),
    (("[Errno 30]", "Read-only file system"), "write the outputs elsewhere"),
)


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def job_failure(exc: BaseException) -> JobFailedError:
    """The one-line :class:`JobFailedError` of a job that raised ``exc``:
    the step that failed and the innermost error the runner reported (a
    hybridflow error's own message, or ``Type: message`` and a hint)."""
    text = "\n".join(str(e) for e in _causes(exc))
    steps = _STEP.findall(text)
    own = next((e for e in _causes(exc) if isinstance(e, HybridflowError)), None)
    if own is not None:
        cause = _STEP.sub("", str(own)).strip()
    else:
        lines = [line.strip() for line in text.splitlines()]
        found = [m for line in lines if (m := _EXCEPTION_LINE.match(line)) and not _PIPELINE_FAILED.match(m.group(2))]
        if found:
            kind, message = found[-1].group(1), _STEP.sub("", found[-1].group(2)).strip()
            # hybridflow's own errors say what and how to fix; others get their type
            cause = message if kind.startswith("hybridflow.") else f"{kind.rpartition('.')[2]}: {message}"
        else:
            first = next((line for line in lines if line), type(exc).__name__)
            cause = f"{type(exc).__name__}: {_STEP.sub('', first)[:300]}"
    hint = next((h for needles, h in _HINTS if any(n in cause for n in needles)), "")
    where = f" in step {steps[-1]!r}" if steps else ""
    return JobFailedError(f"the job failed{where}: {cause}" + (f"; {hint}" if hint else ""))


def _check_dead_letters(summary: RunSummary, limit: Optional[float]) -> None:
    """Raises :class:`TooManyDeadLettersError` when more than ``limit`` of the records read became dead letters."""
    read, dead = summary.records_read, summary.dead_letters
    if limit is None or not read or dead / read <= limit:
        return
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(summary.metrics.prefixed("dead_letters.").items()))
    raise TooManyDeadLettersError(
        f"{dead} of {read} records read ({dead / read:.0%}) became dead letters ({reasons}), more than "
        f"--max_dead_letter_ratio={limit:g} allows, so nothing was published: check that the input has the "
        "expected format, or raise the limit (--max_dead_letter_ratio=1 or off)"
    )


def run_pipeline(spec: PipelineSpec, options: PipelineOptions) -> RunSummary:
    """Builds and runs ``spec`` with ``options``; waits, publishes its outputs and summarises.

    Raises :class:`~hybridflow.errors.InvalidLocationError` before the job
    when an input or output location cannot be used,
    :class:`~hybridflow.errors.JobFailedError` when the job fails (and
    :class:`~hybridflow.errors.TooManyDeadLettersError` past
    ``--max_dead_letter_ratio``); then nothing is published.
    """
    started = time.monotonic()
    # read before running: portable runners clear --runner in the options they run
    requested = options.view_as(StandardOptions).runner or "DirectRunner"
    requested = requested if isinstance(requested, str) else type(requested).__name__
    stage_hybridflow(options, spec)  # on Dataflow: the workers get the wheels unless their image has them
    mode = options.view_as(HybridflowOptions).mode
    run_options = options.view_as(RunOptions)
    outputs = RunOutputs(overwrite=run_options.overwrite)
    p = beam.Pipeline(options=options)
    locations = construct(p, spec, options, outputs)  # checks the inputs
    outputs.prepare()  # checks the output directories
    try:
        with JobMonitor(spec.name, options, runner=requested) as monitor:  # --metrics_port, --deadline ...
            try:
                result = p.run()
                names = monitor.attach(result, p)
                state = result.wait_until_finish()
            except Exception as exc:  # noqa: BLE001 - whatever the runner raises for a failed job
                raise job_failure(exc) from exc
            summary = RunSummary(
                pipeline=spec.name,
                mode=mode,
                runner=_engine(result, options, requested.rsplit(".", 1)[-1]),
                state=str(state),
                outputs=locations,
                metrics=query_counters(result, names),
                wall_seconds=time.monotonic() - started,
                run_id=outputs.run_id,
            )
            by_sink = {label: _written(summary.metrics, label) for labels in outputs.labels.values() for label in labels}
            summary.written = {name: sum(by_sink[label] for label in labels) for name, labels in outputs.labels.items()}
            monitor.finish(summary)
        _LOG.info("run %s:\n%s", outputs.run_id, summary.render())
        if not summary.state.endswith("DONE"):
            raise JobFailedError(f"the job ended in state {summary.state.rpartition('.')[2]}, so nothing was published")
        _check_dead_letters(summary, run_options.dead_letter_limit(mode))
        summary.published = outputs.publish(job_summary(monitor.status, summary.metrics), by_sink)
    except BaseException:
        outputs.abort()
        raise
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
