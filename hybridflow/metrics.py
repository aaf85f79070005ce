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
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

__all__ = ["NAMESPACE", "CountElements", "counter", "MetricsSnapshot", "query_counters"]

NAMESPACE = "hybridflow"


def counter(name: str):
    """A Beam counter in the hybridflow namespace."""
    return Metrics.counter(NAMESPACE, name)


class _CountFn(beam.DoFn):
    def __init__(self, name: str):
        self._name = name
        self._counter = None

    def setup(self):
        self._counter = counter(self._name)

    def process(self, element):
        self._counter.inc()
        yield element


class CountElements(beam.PTransform):
    """Passes elements through unchanged, counting them in ``hybridflow/<name>``."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    def expand(self, pcoll):
        return pcoll | beam.ParDo(_CountFn(self._name)).with_output_types(pcoll.element_type)


@dataclasses.dataclass
class MetricsSnapshot:
    """Counter totals of one run: ``by_name[name]`` and ``by_step[step][name]``."""

    by_name: dict[str, int]
    by_step: dict[str, dict[str, int]]

    def get(self, name: str, default: int = 0) -> int:
        return self.by_name.get(name, default)

    def prefixed(self, prefix: str) -> Mapping[str, int]:
        return {k[len(prefix):]: v for k, v in self.by_name.items() if k.startswith(prefix)}


def _value(result: Any) -> int:
    committed = getattr(result, "committed", None)
    attempted = getattr(result, "attempted", None)
    value = committed if committed is not None else attempted
    return int(value or 0)


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


def query_counters(pipeline_result) -> MetricsSnapshot:
    """Totals of the hybridflow counters of a finished (or running) pipeline.

    Runners that cannot answer metric queries give an empty snapshot.
    """
    by_name: dict[str, int] = defaultdict(int)
    by_step: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    try:
        counters = _portable_counters(pipeline_result)
        if counters is None:
            results = pipeline_result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
            counters = {(c.key.step, c.key.metric.name): _value(c) for c in results.get("counters", [])}
    except Exception:  # noqa: BLE001 - a runner without metric support
        return MetricsSnapshot({}, {})
    for (step, name), value in counters.items():
        by_name[name] += value
        by_step[step][name] += value
    return MetricsSnapshot(dict(by_name), {k: dict(v) for k, v in by_step.items()})
