"""Beam metrics reported by hybridflow transforms, and their read-back.

All counters live in the namespace ``hybridflow``; the step that reported them
is part of Beam's metric key. Names:

``records_read`` / ``records_written``
    elements produced by a ``ReadFrom`` / consumed by a ``WriteTo``.
``records_in`` / ``records_out``
    elements entering / leaving a transform.
``dead_letters`` and ``dead_letters.<reason>``
    records routed to the dead-letter output, in total and per reason.
``late_records``
    records later than the allowed lateness of a window (explicit output).
``filtered``
    records dropped on purpose by a filter (counted, never silent).
``alerts`` / ``alerts.<rule>`` / ``alerts_suppressed``
    alerts raised by rules (before the cooldown) / kept back by the cooldown.
``enrich_hits`` / ``enrich_misses``
    records that found / did not find their reference row in ``Enrich``.
``enrich_cache_hits`` / ``enrich_cache_misses``
    lookups answered by a lookup handler's cache / sent to its backend.
``event_time_lag_ms`` (a Beam Distribution)
    processing time minus event time, in milliseconds, of each record entering
    a step (elements without an event time, e.g. bounded file lines before
    parsing, are not measured; a record from the future counts as 0).

:func:`query_metrics` reads them back from a running or finished pipeline on
any runner that answers metric queries, with the steps named by their labels.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import defaultdict
from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP

__all__ = [
    "NAMESPACE",
    "LAG",
    "CountElements",
    "EventTimeLag",
    "counter",
    "Distribution",
    "MetricsSnapshot",
    "query_counters",
    "query_metrics",
    "step_names",
]

NAMESPACE = "hybridflow"
LAG = "event_time_lag_ms"

_LOG = logging.getLogger(__name__)
_NO_EVENT_TIME = (MIN_TIMESTAMP.micros, GlobalWindow().max_timestamp().micros)


def counter(name: str):
    """A Beam counter in the hybridflow namespace."""
    return Metrics.counter(NAMESPACE, name)


class EventTimeLag:
    """The ``hybridflow/event_time_lag_ms`` distribution of one step; create it
    in ``setup()`` and call :meth:`observe` with each record's event time."""

    def __init__(self):
        self._distribution = Metrics.distribution(NAMESPACE, LAG)

    def observe(self, event_time) -> None:
        micros = event_time.micros
        # no event time: timestamped at the start (e.g. file lines) or at the
        # end of the global window (e.g. a global aggregate)
        if _NO_EVENT_TIME[0] < micros < _NO_EVENT_TIME[1]:
            self._distribution.update(max(0, int(time.time() * 1000) - micros // 1000))


class _CountFn(beam.DoFn):
    def __init__(self, name: str):
        self._name = name
        self._counter = None

    def setup(self):
        self._counter = counter(self._name)
        self._lag = EventTimeLag()

    def process(self, element, timestamp=beam.DoFn.TimestampParam):
        self._counter.inc()
        self._lag.observe(timestamp)
        yield element


class CountElements(beam.PTransform):
    """Passes elements through unchanged, counting them in ``hybridflow/<name>``
    (and measuring their event-time lag)."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    def expand(self, pcoll):
        return pcoll | beam.ParDo(_CountFn(self._name)).with_output_types(pcoll.element_type)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """count / sum / min / max of a Beam distribution."""

    count: int
    sum: int
    min: Optional[int]
    max: Optional[int]

    @property
    def mean(self) -> Optional[float]:
        return self.sum / self.count if self.count else None


@dataclasses.dataclass
class MetricsSnapshot:
    """Metric values of one run.

    ``by_name[name]`` and ``by_step[step][name]`` are counter totals;
    ``distributions[step][name]`` the distributions. Steps are transform
    labels (``Score/EnrichWithProfile/Join``) on every runner.
    """

    by_name: dict[str, int]
    by_step: dict[str, dict[str, int]]
    distributions: dict[str, dict[str, Distribution]] = dataclasses.field(default_factory=dict)

    def get(self, name: str, default: int = 0) -> int:
        return self.by_name.get(name, default)

    def prefixed(self, prefix: str) -> Mapping[str, int]:
        return {k[len(prefix):]: v for k, v in self.by_name.items() if k.startswith(prefix)}


def _value(result: Any) -> Any:
    committed = getattr(result, "committed", None)
    attempted = getattr(result, "attempted", None)
    return committed if committed is not None else attempted


# Portable runners name steps by transform id: ref_AppliedPTransform_<label>_<n>
_TRANSFORM_ID = re.compile(r"^e?ref_AppliedPTransform_(.+)_\d+(_.*)?$")
# the label Beam gives a ParDo inside a labelled composite: Parse/ParDo(_ParseFn)
_PARDO_SUFFIX = re.compile(r"/ParDo\([^/]*\)$")


def step_names(pipeline: beam.Pipeline) -> dict[str, str]:
    """Transform id -> label of every transform of ``pipeline`` (call it after
    ``run()``: the ids are the ones the runner was given)."""
    transforms = pipeline.to_runner_api().components.transforms
    return {tid: t.unique_name for tid, t in transforms.items() if t.unique_name}


def _step(step: str, names: Mapping[str, str]) -> str:
    """The label of a step, without a last ``/ParDo(...)`` part."""
    if step in names:
        step = names[step]
    else:
        match = _TRANSFORM_ID.match(step)
        step = match.group(1) if match else step
    return _PARDO_SUFFIX.sub("", step)


def _fresh_results(pipeline_result):
    """The job's metrics now. A portable result (Prism, Flink) caches its
    first answer to ``metrics()``; ask its job service again instead."""
    job_service = getattr(pipeline_result, "_job_service", None)
    job_id = getattr(pipeline_result, "_job_id", None)
    if job_service is None or job_id is None:
        return pipeline_result.metrics()
    from apache_beam.portability.api import beam_job_api_pb2
    from apache_beam.runners.portability.portable_runner import PortableMetrics

    return PortableMetrics(job_service.GetJobMetrics(beam_job_api_pb2.GetJobMetricsRequest(job_id=job_id)))


def _portable_counters(pipeline_result) -> Optional[dict[tuple[str, str], int]]:
    """``{(step, name): total}`` of a job on a portable job service (Prism, Flink),
    or None when the result is not a portable one.

    Read from the job service's raw monitoring infos, not through Beam's
    ``PortableMetrics``: that keeps one value per (step, name), but Flink
    reports a counter once per executable stage that ran the step (a step after
    a Flatten of outputs of several stages runs in each of them), so Beam's
    query returns one of the parts. The parts are summed here; committed values
    where the runner gives them, else attempted ones.
    """
    from apache_beam.metrics import monitoring_infos
    from apache_beam.portability.api import beam_job_api_pb2
    from apache_beam.runners.portability.portable_runner import PipelineResult

    if not isinstance(pipeline_result, PipelineResult):
        return None
    # The job service and id are private attributes of Beam's PipelineResult.
    response = pipeline_result._job_service.GetJobMetrics(
        beam_job_api_pb2.GetJobMetricsRequest(job_id=pipeline_result._job_id)
    )

    def totals(infos) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = defaultdict(int)
        for info in infos:
            if not (monitoring_infos.is_user_monitoring_info(info) and monitoring_infos.is_counter(info)):
                continue
            namespace, name = monitoring_infos.parse_namespace_and_name(info)
            if namespace == NAMESPACE:
                step = monitoring_infos.get_step_name(info)
                out[(step, name)] += int(monitoring_infos.extract_metric_result_map_value(info) or 0)
        return out

    committed, attempted = totals(response.metrics.committed), totals(response.metrics.attempted)
    return {key: committed.get(key, value) for key, value in {**attempted, **committed}.items()}


def query_metrics(
    pipeline_result, names: Optional[Mapping[str, str]] = None, fresh: bool = False
) -> MetricsSnapshot:
    """The hybridflow metrics of a running or finished pipeline.

    ``names`` maps runner step ids to labels (see :func:`step_names`);
    ``fresh`` asks the runner again on every call (for polling a running job).
    Raises what the runner raises when it cannot answer.
    """
    names = names or {}
    source = _fresh_results(pipeline_result) if fresh else pipeline_result.metrics()
    results = source.query(MetricsFilter().with_namespace(NAMESPACE))
    by_name: dict[str, int] = defaultdict(int)
    by_step: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    distributions: dict[str, dict[str, Distribution]] = defaultdict(dict)
    # Flink reports a counter once per executable stage that ran the step:
    # sum the parts from the job service's raw monitoring infos
    counters = _portable_counters(pipeline_result)
    if counters is None:
        counters = defaultdict(int)
        for item in results.get("counters", []):
            counters[(item.key.step, item.key.metric.name)] += int(_value(item) or 0)
    for (step, name), value in counters.items():
        by_name[name] += value
        by_step[_step(step, names)][name] += value
    for item in results.get("distributions", []):
        data = _value(item)
        if data is None or not data.count:
            continue
        step, name = _step(item.key.step, names), item.key.metric.name
        old = distributions[step].get(name)
        new = Distribution(int(data.count), int(data.sum), data.min, data.max)
        if old is not None:  # one label, several ids (e.g. fused stages): merge
            new = Distribution(
                old.count + new.count, old.sum + new.sum, min(old.min, new.min), max(old.max, new.max)
            )
        distributions[step][name] = new
    return MetricsSnapshot(
        dict(by_name), {k: dict(v) for k, v in by_step.items()}, dict(distributions)
    )


def query_counters(pipeline_result, names: Optional[Mapping[str, str]] = None) -> MetricsSnapshot:
    """Totals of the hybridflow metrics of a finished (or running) pipeline.

    Runners that cannot answer metric queries give an empty snapshot.
    """
    try:
        return query_metrics(pipeline_result, names)
    except Exception as exc:  # noqa: BLE001 - a runner without metric support
        _LOG.info("the runner answered no metrics: %s", exc)
        return MetricsSnapshot({}, {})
