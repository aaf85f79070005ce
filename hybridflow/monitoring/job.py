"""Watching one run of a pipeline: live metrics, a deadline, a metrics file.

:class:`JobMonitor` wraps ``p.run()`` (``hybridflow run`` uses it; see
:func:`hybridflow.pipelines.run.run_pipeline`)::

    with JobMonitor("fraud", options) as monitor:   # starts the metrics server, the deadline clock
        result = p.run()
        names = monitor.attach(result, p)             # polls the job's metrics from now on
        result.wait_until_finish()
        monitor.finish(summary)                       # final metrics, deadline check, --metrics_json

The flags are :class:`~hybridflow.options.MonitoringOptions`:

- ``--metrics_port``: :class:`~hybridflow.monitoring.exporter.MetricsExporter`
  serves ``/metrics`` until the job ends (plus ``--metrics_linger``);
- ``--deadline``: when the job is still running that long after it started,
  one ``deadline`` :class:`~hybridflow.schemas.Alert` fires at once (a line on
  stderr, and a POST to ``--alerts_webhook``); the job keeps running (a
  scheduler decides whether to cancel it) and ``hybridflow run`` then exits
  with code 3;
- ``--metrics_json``: the final metrics and a job summary, written when the
  job ends, failed jobs included;
- ``--metrics_pushgateway``: the final metrics pushed to a Prometheus
  Pushgateway when the job ends (failed jobs included), for batch jobs that
  end between two scrapes.
"""

from __future__ import annotations

import json
import threading
import time
from typing import IO, Any, Mapping, Optional

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import format_duration, iso_time
from hybridflow.errors import ConnectorError
from hybridflow.logs import terminal
from hybridflow.metrics import MetricsSnapshot, step_names
from hybridflow.monitoring.exporter import JobStatus, MetricsExporter, push_metrics
from hybridflow.options import HybridflowOptions, MonitoringOptions
from hybridflow.redaction import redact
from hybridflow.schemas import Alert, to_plain

__all__ = ["JobMonitor", "deadline_alert", "deliver_alerts", "job_report", "job_summary", "run_counts", "DEADLINE_EXIT_CODE"]

#: exit code of ``hybridflow run`` when the job finished but overran ``--deadline``
DEADLINE_EXIT_CODE = 3


def deliver_alerts(outputs: Mapping[str, Any], options: PipelineOptions) -> dict:
    """With ``--alerts_webhook``, also POSTs a pipeline's ``alerts`` output
    there; alerts that cannot be delivered join its ``dead_letters`` output."""
    outputs = dict(outputs)
    url = options.view_as(MonitoringOptions).alerts_webhook
    if not url or "alerts" not in outputs:
        return outputs
    import apache_beam as beam

    from hybridflow.monitoring.webhook import PostAlerts

    delivery = outputs["alerts"] | "PostAlerts" >> PostAlerts(url)
    if "dead_letters" in outputs:
        outputs["dead_letters"] = (outputs["dead_letters"], delivery.dead_letters) | "AddUndelivered" >> beam.Flatten()
    else:
        outputs["dead_letters"] = delivery.dead_letters
    return outputs


def deadline_alert(status: JobStatus, now: float) -> Alert:
    """The alert of a job still running past its deadline; its id depends
    only on the pipeline and the start time, so every copy has the same id."""
    from hybridflow.transforms.alerts import alert_id

    started = Timestamp.of(status.started)
    elapsed = now - status.started
    return Alert(
        alert_id=alert_id("deadline", status.pipeline, started),
        rule="deadline",
        key=status.pipeline,
        value=round(elapsed, 3),
        threshold=status.deadline,
        event_time=Timestamp.of(now),
        window_start=started,
        window_end=Timestamp.of(status.started + status.deadline),
        message=(
            f"pipeline {status.pipeline} ({status.mode}) still running {elapsed:.1f}s after it started "
            f"at {iso_time(status.started)}: past its deadline of {format_duration(status.deadline)}"
        ),
    )


def run_counts(metrics: MetricsSnapshot) -> dict[str, Any]:
    """The counts of a run, as the summary, ``--metrics_json`` and ``_SUCCESS`` give them."""
    m = metrics
    return {
        "records_read": m.get("records_read"),
        "records_written": m.get("records_written"),
        "dead_letters": m.get("dead_letters"),
        "dead_letters_by_reason": dict(sorted(m.prefixed("dead_letters.").items())),
        "late_records": m.get("late_records"),
        "duplicates": m.get("duplicates"),
        "filtered": m.get("filtered"),
        "alerts_raised": m.get("alerts"),
        "alerts_suppressed": m.get("alerts_suppressed"),
        "alerts": m.get("alerts") - m.get("alerts_suppressed"),
        "alerts_by_rule": dict(sorted(m.prefixed("alerts.").items())),
    }


def job_summary(status: JobStatus, metrics: MetricsSnapshot) -> dict[str, Any]:
    """The job, its times and its counts (the head of ``--metrics_json``, the body of ``_SUCCESS``)."""
    return {
        "pipeline": status.pipeline,
        "mode": status.mode,
        "runner": status.runner,
        "state": status.state,
        "start": iso_time(status.started),
        "end": iso_time(status.ended),
        "duration_seconds": round(status.ended - status.started, 3) if status.ended else None,
        "deadline_seconds": status.deadline,
        "deadline_exceeded": status.deadline_exceeded,
        "counts": run_counts(metrics),
    }


def job_report(status: JobStatus, metrics: MetricsSnapshot, outputs: Mapping[str, str], error: str = "") -> dict:
    """The ``--metrics_json`` document: job summary, counts, every metric."""
    m = metrics
    report: dict[str, Any] = {
        **job_summary(status, metrics),
        "outputs": dict(outputs),
        "metrics": {
            "counters": [
                {"step": step, "name": name, "value": value}
                for step, counters in sorted(m.by_step.items())
                for name, value in sorted(counters.items())
            ],
            "distributions": [
                {"step": step, "name": name, "count": d.count, "sum": d.sum, "min": d.min, "max": d.max,
                 "mean": d.mean}
                for step, dists in sorted(m.distributions.items())
                for name, d in sorted(dists.items())
            ],
        },
    }
    if error:
        report["error"] = error
    return report


def _write_json(path: str, document: dict) -> None:
    from apache_beam.io.filesystems import FileSystems

    data = (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8")
    if "://" in path:
        with FileSystems.create(path, mime_type="application/json") as f:
            f.write(data)
        return
    import os

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class JobMonitor:
    """Watches one run (see the module docstring).

    Args:
      pipeline: the pipeline's name (the ``pipeline`` label).
      options: the run's options (:class:`MonitoringOptions` flags).
      runner: the runner's name for ``hybridflow_pipeline_info``.
      err: where the monitor's lines go (default the terminal's stderr, see :func:`hybridflow.logs.terminal`).
    """

    def __init__(self, pipeline: str, options: PipelineOptions, runner: str = "", err: Optional[IO[str]] = None):
        self._options = options.view_as(MonitoringOptions)
        hf = options.view_as(HybridflowOptions)
        self.status = JobStatus(pipeline, mode=hf.mode or "", runner=runner, deadline=self._options.deadline)
        self._err = err if err is not None else terminal()
        self._exporter: Optional[MetricsExporter] = None
        self._timer: Optional[threading.Timer] = None
        self._lock = threading.Lock()
        self._alerted = False
        self._finished = False

    @property
    def exporter(self) -> Optional[MetricsExporter]:
        return self._exporter

    def __enter__(self) -> "JobMonitor":
        self.status.started = time.time()
        self.status.state = "RUNNING"
        opts = self._options
        if opts.metrics_port is not None:
            self._exporter = MetricsExporter(
                self.status, opts.metrics_port, opts.metrics_address, opts.metrics_interval
            ).start()
            print(f"hybridflow: serving metrics at {self._exporter.url}", file=self._err, flush=True)
            if self._exporter.public:
                print(
                    f"hybridflow: warning: the metrics endpoint has no authentication and listens on "
                    f"{self._exporter.address}, reachable from other hosts; see docs/security.md",
                    file=self._err, flush=True,
                )
        if opts.deadline is not None:
            self._timer = threading.Timer(opts.deadline, self._deadline_passed)
            self._timer.daemon = True
            self._timer.start()
        return self

    def attach(self, result, pipeline) -> dict[str, str]:
        """Follows ``result`` (after ``pipeline.run()``); returns step id -> label."""
        names = step_names(pipeline)
        if self._exporter is not None:
            self._exporter.attach(result, names)
        return names

    def _deadline_passed(self) -> None:
        with self._lock:
            if self._alerted or self._finished:
                return
            self._alerted = True
            self.status.deadline_exceeded = True
        self._fire(deadline_alert(self.status, time.time()))

    def _fire(self, alert: Alert) -> None:
        print(f"hybridflow: deadline exceeded: {alert.message}", file=self._err, flush=True)
        url = self._options.alerts_webhook
        if not url:
            return
        from hybridflow.monitoring.webhook import WebhookClient

        try:
            with WebhookClient(url) as client:
                client.post(to_plain(alert), alert.alert_id)
        except ConnectorError as exc:  # WebhookError included: say so, the exit code still tells
            print(f"hybridflow: the deadline alert was not delivered: {exc}", file=self._err, flush=True)

    def finish(self, summary) -> None:
        """Records the end of the job from its :class:`~hybridflow.pipelines.run.RunSummary`:
        final state and metrics, the deadline check, ``--metrics_json``."""
        now = time.time()
        with self._lock:
            self._finished = True
            late = (
                self.status.deadline is not None
                and now - self.status.started > self.status.deadline
                and not self._alerted
            )
            if late:
                self._alerted = True
            self.status.deadline_exceeded = self.status.deadline_exceeded or late
        if late:  # ended between the deadline and the timer's turn
            self._fire(deadline_alert(self.status, now))
        self.status.ended = now
        self.status.state = str(summary.state).rpartition(".")[2]
        self.status.runner = summary.runner
        summary.deadline_exceeded = self.status.deadline_exceeded
        if self._exporter is not None:
            self._exporter.detach()
            self._exporter.snapshot = summary.metrics  # the final numbers, as the summary shows them
        if self._options.metrics_json:
            _write_json(self._options.metrics_json, job_report(self.status, summary.metrics, summary.outputs))
        self._push(summary.metrics)

    def _push(self, snapshot: Optional[MetricsSnapshot]) -> None:
        """``--metrics_pushgateway``: the final metrics; a failed push is one line on stderr."""
        if not self._options.metrics_pushgateway:
            return
        try:
            push_metrics(self._options.metrics_pushgateway, snapshot, self.status)
        except ConnectorError as exc:
            print(f"hybridflow: metrics not pushed: {exc}", file=self._err, flush=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            if exc is not None and not self._finished:
                self._finished = True
                self.status.ended = time.time()
                self.status.state = "FAILED"
                if self._exporter is not None:
                    self._exporter.refresh()
                snapshot = self._exporter.snapshot if self._exporter and self._exporter.snapshot else None
                if self._options.metrics_json:
                    _write_json(
                        self._options.metrics_json,
                        job_report(self.status, snapshot or MetricsSnapshot({}, {}), {},
                                   error=redact(f"{exc_type.__name__}: {exc}")),
                    )
                self._push(snapshot)
            if self._exporter is not None and self._options.metrics_linger:
                time.sleep(self._options.metrics_linger)
        finally:
            if self._exporter is not None:
                self._exporter.stop()
