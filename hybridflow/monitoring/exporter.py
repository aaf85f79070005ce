"""Live Prometheus metrics of a running job.

:class:`MetricsExporter` serves ``/metrics`` (Prometheus text format, via
``prometheus_client``) and refreshes what it serves every few seconds by
asking the job's ``PipelineResult`` for its metrics, the way any client of
the runner's job service would; nothing depends on the workers sharing this
process. What each runner answers while a job runs:

==========================  ====================================================
runner                      live metrics
==========================  ====================================================
Prism (and DirectRunner     yes, every refresh (the job service's GetJobMetrics)
when it picks Prism)
BundleBasedDirectRunner     yes, but Beam keeps only the first bundle of each
                            streaming step (a Beam bug): use Prism for streams
FnApiRunner                 at the end only: ``run()`` returns when the job is done
Flink (job server)          at the end only: its job service answers GetJobMetrics
                            once the job finished
Dataflow                    through the Dataflow API (not tried here)
==========================  ====================================================

Metric names (every series has a ``pipeline`` label, and a ``step`` label
with the transform's label, e.g. ``Score/EnrichWithProfile/Join``). Every
counter family is served from the start: until the job reports a series of
it (for dead letters: of each webhook reason), as a series at 0 with an empty
``step``, so no dashboard panel shows "No data":

================================================  ==========================================
``hybridflow_records_total{outcome}``              records ``read`` by a source, ``written``
                                                   by a sink, ``in``/``out`` of a transform
``hybridflow_dead_letters_total{reason}``          records routed to dead letters
``hybridflow_late_records_total``                  records past a window's allowed lateness
``hybridflow_filtered_records_total``              records dropped on purpose (counted)
``hybridflow_duplicate_records_total``             duplicates dropped by ``Dedupe``
``hybridflow_alerts_total{rule}``                  alerts raised by rules (before cooldown)
``hybridflow_alerts_suppressed_total``             alerts held back by a cooldown
``hybridflow_enrich_lookups_total{result}``        ``hit``/``miss``: reference row found or not
``hybridflow_enrich_cache_requests_total{result}`` ``hit``/``miss`` of a lookup handler's cache
``hybridflow_webhook_retries_total``               retried webhook POSTs
``hybridflow_event_time_lag_seconds``              summary (``_count``, ``_sum``) of
                                                   processing time minus event time
``hybridflow_event_time_lag_min_seconds`` /        its smallest / largest value so far
``hybridflow_event_time_lag_max_seconds``
``hybridflow_<counter>_total``                     any other ``hybridflow`` counter
``hybridflow_pipeline_info{mode, runner}``         1
``hybridflow_pipeline_state{state}``               1 for the job's current state, else 0
``hybridflow_pipeline_start_time_seconds``,        job start / end (Unix time)
``hybridflow_pipeline_end_time_seconds``
``hybridflow_pipeline_deadline_seconds``,          ``--deadline`` and whether the job
``hybridflow_pipeline_deadline_exceeded``          overran it (0/1; 0 without a deadline)
``hybridflow_metrics_refresh_time_seconds``,       last successful read of the job's
``hybridflow_metrics_refresh_errors_total``        metrics; failed reads
================================================  ==========================================
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Iterator, Mapping, Optional

from hybridflow.errors import InvalidOptionError, require
from hybridflow.metrics import MetricsSnapshot, query_metrics

__all__ = ["JobStatus", "MetricsExporter", "metric_families", "counter_names", "push_metrics", "STATES"]

_LOG = logging.getLogger(__name__)

STATES = ("STARTING", "RUNNING", "DONE", "FAILED", "CANCELLED", "UPDATED", "DRAINED", "UNKNOWN")

_OUTCOMES = {"records_read": "read", "records_written": "written", "records_in": "in", "records_out": "out"}
# counter -> (family, label, value)
_LABELLED = {
    "enrich_hits": ("enrich_lookups", "result", "hit"),
    "enrich_misses": ("enrich_lookups", "result", "miss"),
    "enrich_cache_hits": ("enrich_cache_requests", "result", "hit"),
    "enrich_cache_misses": ("enrich_cache_requests", "result", "miss"),
}
# counter prefix (a total and one counter per label value) -> (family, label)
_BY_SUFFIX = {"dead_letters": ("dead_letters", "reason"), "alerts": ("alerts", "rule")}
_RENAMED = {"filtered": "filtered_records", "duplicates": "duplicate_records"}

_HELP = {
    "records": "Records read by sources, written by sinks, and into / out of each transform.",
    "dead_letters": "Records routed to a dead-letter output, by reason.",
    "late_records": "Records later than their window's allowed lateness (the explicit late output).",
    "filtered_records": "Records dropped on purpose (e.g. duplicates), counted.",
    "duplicate_records": "Duplicate records dropped by Dedupe.",
    "alerts": "Alerts raised by rules, before the cooldown.",
    "alerts_suppressed": "Alerts held back by a cooldown.",
    "enrich_lookups": "Enrich: records whose reference row was found (hit) or not (miss).",
    "enrich_cache_requests": "Lookup-handler cache: lookups answered by the cache (hit) or the backend (miss).",
    "webhook_retries": "Webhook POSTs retried (429, 5xx, no answer).",
    "event_time_lag_seconds": "Processing time minus event time of the records entering a step.",
}

@dataclasses.dataclass
class JobStatus:
    """What the exporter says about the job besides its metrics."""

    pipeline: str
    mode: str = ""
    runner: str = ""
    state: str = "STARTING"
    started: Optional[float] = None  # Unix time
    ended: Optional[float] = None
    deadline: Optional[float] = None  # seconds
    deadline_exceeded: bool = False
    refreshed: Optional[float] = None
    refresh_errors: int = 0


# Every declared counter family starts at 0 (so a dashboard panel over it shows 0, not "No data",
# and rate() counts its first increment): family -> the label values of its zero series. A zero
# series (with an empty step) is served while the job has reported no series with those label
# values (e.g. dead letters of the webhook reasons once other reasons have some).
_ZERO_SERIES: Mapping[str, tuple[Mapping[str, str], ...]] = {
    "records": tuple({"outcome": o} for o in ("read", "written", "in", "out")),
    "dead_letters": tuple({"reason": r} for r in ("webhook_rejected", "webhook_failed", "webhook_unreachable")),
    "late_records": ({},),
    "filtered_records": ({},),
    "duplicate_records": ({},),
    "alerts": ({},),
    "alerts_suppressed": ({},),
    "enrich_lookups": ({"result": "hit"}, {"result": "miss"}),
    "enrich_cache_requests": ({"result": "hit"}, {"result": "miss"}),
    "webhook_retries": ({},),
}


def counter_names() -> list[str]:
    """Names of the Beam counters (namespace ``hybridflow``) the exporter knows
    by name; ``dead_letters.REASON`` and ``alerts.RULE`` stand for their families (the
    Cloud Monitoring dashboard's filters are checked against these)."""
    return sorted({*_OUTCOMES, *_LABELLED, *_RENAMED, "late_records", "alerts_suppressed", "webhook_retries",
                   *_BY_SUFFIX, *(f"{prefix}.{label.upper()}" for prefix, (_, label) in _BY_SUFFIX.items()),
                   *(f"dead_letters.{v['reason']}" for v in _ZERO_SERIES["dead_letters"])})


def _name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", text)


def metric_families(snapshot: Optional[MetricsSnapshot], status: JobStatus) -> list:
    """Prometheus metric families for a snapshot of the job's metrics."""
    core = require("prometheus_client.core", "live metrics (--metrics_port)", "monitoring")
    pipeline = status.pipeline
    families: dict = {}

    def family(kind, name, labels, help_text=None):
        key = (kind, name)
        if key not in families:
            cls = {"counter": core.CounterMetricFamily, "gauge": core.GaugeMetricFamily,
                   "summary": core.SummaryMetricFamily}[kind]
            families[key] = cls(f"hybridflow_{name}", help_text or _HELP.get(name, f"hybridflow {name}"),
                                labels=["pipeline", *labels])
        return families[key]

    def count(name, labels, values, value):
        family("counter", name, list(labels)).add_metric([pipeline, *values], value)

    snapshot = snapshot or MetricsSnapshot({}, {})
    for step, counters in sorted(snapshot.by_step.items()):
        for name, value in sorted(counters.items()):
            if name in _OUTCOMES:
                count("records", ("step", "outcome"), (step, _OUTCOMES[name]), value)
            elif name in _LABELLED:
                fam, label, label_value = _LABELLED[name]
                count(fam, ("step", label), (step, label_value), value)
            elif name in _BY_SUFFIX:
                fam, label = _BY_SUFFIX[name]
                parts = sum(v for n, v in counters.items() if n.startswith(name + "."))
                if value > parts:  # counted without a reason / rule
                    count(fam, ("step", label), (step, "unspecified"), value - parts)
            elif name.partition(".")[0] in _BY_SUFFIX and "." in name:
                prefix, _, suffix = name.partition(".")
                fam, label = _BY_SUFFIX[prefix]
                count(fam, ("step", label), (step, suffix), value)
            else:
                count(_RENAMED.get(name, _name(name)), ("step",), (step,), value)
    for step, distributions in sorted(snapshot.distributions.items()):
        for name, d in sorted(distributions.items()):
            base, scale, unit = (name[:-3], 1000.0, "_seconds") if name.endswith("_ms") else (name, 1.0, "")
            base = _name(base)
            family("summary", base + unit, ["step"]).add_metric(
                [pipeline, step], count_value=d.count, sum_value=d.sum / scale
            )
            for which, value in (("min", d.min), ("max", d.max)):
                family("gauge", f"{base}_{which}{unit}", ["step"],
                       f"The {'smallest' if which == 'min' else 'largest'} {base}{unit} so far.").add_metric(
                    [pipeline, step], value / scale
                )
    for name, series in _ZERO_SERIES.items():
        served = families[("counter", name)].samples if ("counter", name) in families else []
        for values in series:
            if not any(all(s.labels.get(k) == v for k, v in values.items()) for s in served):
                count(name, ["step", *values], ("", *values.values()), 0)
    family("gauge", "pipeline_info", ["mode", "runner"], "The job: 1.").add_metric(
        [pipeline, status.mode, status.runner], 1
    )
    states = family("gauge", "pipeline_state", ["state"], "1 for the job's current state, 0 for the others.")
    for state in sorted(set(STATES) | {status.state}):
        states.add_metric([pipeline, state], 1 if state == status.state else 0)
    for name, value, text in (
        ("pipeline_start_time_seconds", status.started, "When the job started (Unix time)."),
        ("pipeline_end_time_seconds", status.ended, "When the job ended (Unix time)."),
        ("pipeline_deadline_seconds", status.deadline, "The job's --deadline."),
        ("metrics_refresh_time_seconds", status.refreshed, "Last successful read of the job's metrics."),
    ):
        if value is not None:
            family("gauge", name, [], text).add_metric([pipeline], value)
    family("gauge", "pipeline_deadline_exceeded", [], "1 if the job overran its --deadline (0 without one).").add_metric(
        [pipeline], 1 if status.deadline_exceeded else 0
    )
    family("counter", "metrics_refresh_errors", [], "Failed reads of the job's metrics.").add_metric(
        [pipeline], status.refresh_errors
    )
    return list(families.values())


class _Collector:
    """The families of a snapshot, read when Prometheus (or a push) collects."""

    def __init__(self, source):
        self._source = source  # () -> (snapshot, status)

    def describe(self):
        return []  # families depend on what the job reports

    def collect(self) -> Iterator:
        yield from metric_families(*self._source())


def _registry(source):
    prometheus_client = require("prometheus_client", "Prometheus metrics", "monitoring")
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector(source))
    return registry


def push_metrics(url: str, snapshot: Optional[MetricsSnapshot], status: JobStatus, timeout: float = 30.0) -> None:
    """Pushes the job's metrics to a Prometheus Pushgateway at ``url``, replacing
    what the same pipeline pushed before (grouping key ``job="hybridflow"``,
    ``pipeline``). Raises :class:`~hybridflow.errors.ConnectorError` naming the
    gateway when the push fails."""
    from hybridflow.errors import ConnectorError

    prometheus_client = require("prometheus_client", "--metrics_pushgateway", "monitoring")
    try:
        prometheus_client.push_to_gateway(url, job="hybridflow", grouping_key={"pipeline": status.pipeline},
                                          registry=_registry(lambda: (snapshot, status)), timeout=timeout)
    except OSError as exc:  # URLError, connection refused, HTTP errors from the gateway
        raise ConnectorError(f"--metrics_pushgateway={url}: the push failed ({exc}); is the Pushgateway running?") from exc


class MetricsExporter:
    """Serves a job's metrics for Prometheus while it runs.

    ``start()`` opens the HTTP server (``port`` 0 picks a free one, see
    :attr:`port`); ``attach(result)`` starts polling the job every
    ``interval`` seconds; ``refresh()`` polls once; ``stop()`` closes it.

    Args:
      status: the :class:`JobStatus` shown next to the metrics (shared, the
        caller may update it).
      port, address: where to listen; the default address, 127.0.0.1, is
        this host only: the server has no authentication (see
        ``docs/security.md`` for exposing it).
      interval: seconds between polls.
    """

    def __init__(self, status: JobStatus, port: int, address: str = "127.0.0.1", interval: float = 5.0):
        self.status = status
        self.snapshot: Optional[MetricsSnapshot] = None
        self._port = port
        self._address = address
        self._interval = interval
        self._result = None
        self._names: Mapping[str, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._poller: Optional[threading.Thread] = None
        self._server = None
        self._server_thread = None

    @property
    def port(self) -> int:
        return self._server.server_port if self._server is not None else self._port

    @property
    def address(self) -> str:
        """The address the server is bound to (as the socket reports it once started)."""
        return self._server.server_address[0] if self._server is not None else self._address

    @property
    def url(self) -> str:
        """``http://ADDRESS:PORT/metrics`` of the bound socket (``0.0.0.0`` / ``::`` mean every interface)."""
        host = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/metrics"

    @property
    def public(self) -> bool:
        """Whether other hosts can reach the server (bound to a non-loopback address)."""
        import ipaddress

        try:
            return not ipaddress.ip_address(self.address).is_loopback
        except ValueError:  # a host name
            return self.address != "localhost"

    def start(self) -> "MetricsExporter":
        prometheus_client = require("prometheus_client", "live metrics (--metrics_port)", "monitoring")
        registry = _registry(lambda: (self.snapshot, self.status))
        try:
            self._server, self._server_thread = prometheus_client.start_http_server(
                self._port, addr=self._address, registry=registry
            )
        except OSError as exc:
            raise InvalidOptionError(
                f"--metrics_port={self._port}: cannot listen on {self._address}:{self._port} ({exc.strerror}); "
                "pick a free port or 0"
            ) from exc
        return self

    def attach(self, result, names: Optional[Mapping[str, str]] = None) -> None:
        """Starts polling ``result`` (a PipelineResult); ``names`` maps step ids to labels."""
        self._result = result
        self._names = dict(names or {})
        self.refresh()
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="hybridflow-metrics", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def refresh(self) -> None:
        """Reads the job's metrics and state now (errors are counted, not raised)."""
        result = self._result
        if result is None:
            return
        with self._lock:
            try:
                snapshot = query_metrics(result, self._names, fresh=True)
                state = result.state
            except Exception as exc:  # noqa: BLE001 - a job service that went away, a runner without metrics
                self.status.refresh_errors += 1
                _LOG.debug("reading the job's metrics failed: %s", exc)
                return
            self.snapshot = snapshot
            self.status.refreshed = time.time()
            if self.status.ended is None:  # the monitor sets the final state itself
                self.status.state = str(state).rpartition(".")[2] or "UNKNOWN"

    def detach(self) -> None:
        """Stops polling; what was read last stays served."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
            self._poller = None

    def stop(self) -> None:
        self.detach()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server_thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
