"""The iot pipeline's scoring, the same transforms in batch and streaming.

Per reading, the machine model's limits (``Enrich`` by model) and two
per-key threshold rules: temperature or vibration above its model's limit
(``threshold_field``). Per machine, sliding windows of each sensor's mean
and maximum, joined with the machine's baseline (``Enrich`` by machine), and
two z-score rules: the window mean drifted from the machine's own baseline.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam

from hybridflow.pipelines.iot.baselines import BASELINE_FIELDS, SENSORS
from hybridflow.transforms import Enrich, MissingKeyPolicy, Rule, ThresholdAlerts, WindowedAggregate, ZScoreRule

__all__ = ["ScoreReadings", "RULES"]

#: the smallest standard deviation a drift rule divides by, per sensor (°C, mm/s):
#: a machine whose history barely moved is not alerted on sensor noise
_MIN_STDDEV = {"temperature": 0.5, "vibration": 0.05}
#: the rules, in the order they are evaluated
RULES = tuple(f"over_{s}_limit" for s in SENSORS) + tuple(f"{s}_drift" for s in SENSORS)


class ScoreReadings(beam.PTransform):
    """The scoring half of the iot pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.pipelines.iot.records.SensorReading` records
    (event-time timestamped). Output: a dict with ``alerts``, ``aggregates``
    (the windows, with the machine's baseline), ``late`` and ``dead_letters``.

    Args:
      baselines: a bounded PCollection of baseline rows
        (:class:`~hybridflow.pipelines.iot.baselines.BuildBaselines`).
      limits: a bounded PCollection of
        :class:`~hybridflow.pipelines.iot.records.ModelLimits`.
      window: the per-machine window (e.g. ``sliding:10m/1m``).
      zscore_threshold: a window mean this many of the machine's standard
        deviations above its baseline mean is a drift.
      min_history: drift rules apply to machines with at least this many
        readings in their baseline.
      allowed_lateness, cooldown: seconds.
      early_count: streaming: an early window pane every N readings of a machine.
    """

    def __init__(
        self,
        baselines: beam.PCollection,
        limits: beam.PCollection,
        window: str = "sliding:10m/1m",
        zscore_threshold: float = 3.0,
        min_history: int = 30,
        allowed_lateness: float = 300.0,
        cooldown: float = 1800.0,
        early_count: Optional[int] = None,
    ):
        super().__init__()
        self._baselines = baselines
        self._limits = limits
        self._window = window
        self._zscore_threshold = zscore_threshold
        self._min_history = min_history
        self._allowed_lateness = allowed_lateness
        self._cooldown = cooldown
        self._trigger = {"early_count": early_count}

    def expand(self, readings):
        limited = readings | "EnrichWithLimits" >> Enrich(
            self._limits, key="model", fields=[f"max_{s}" for s in SENSORS], prefix="limit_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        limit_alerts = limited.records | "LimitRules" >> ThresholdAlerts(
            [Rule(f"over_{s}_limit", field=s, op=">", threshold_field=f"limit_max_{s}") for s in SENSORS],
            key="machine_id",
            cooldown=self._cooldown,
        )
        aggregations = {"readings": "count"}
        for sensor in SENSORS:
            aggregations[f"{sensor}_mean"] = f"mean({sensor})"
            aggregations[f"{sensor}_max"] = f"max({sensor})"
        windows = readings | "MachineWindows" >> WindowedAggregate(
            key="machine_id",
            window=self._window,
            aggregations=aggregations,
            allowed_lateness=self._allowed_lateness,
            trigger=self._trigger,
        )
        scored_windows = windows.aggregates | "EnrichWithBaseline" >> Enrich(
            self._baselines, key="machine_id", fields=list(BASELINE_FIELDS), prefix="baseline_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        drift_alerts = scored_windows.records | "DriftRules" >> ThresholdAlerts(
            [
                ZScoreRule(
                    f"{s}_drift",
                    value_field=f"{s}_mean",
                    mean_field=f"baseline_{s}_mean",
                    stddev_field=f"baseline_{s}_stddev",
                    threshold=self._zscore_threshold,
                    count_field="baseline_readings",
                    min_count=self._min_history,
                    min_stddev=_MIN_STDDEV[s],
                )
                for s in SENSORS
            ],
            key="machine_id",
            cooldown=self._cooldown,
        )
        return {
            "alerts": (limit_alerts, drift_alerts) | "AllAlerts" >> beam.Flatten(),
            "aggregates": scored_windows.records,
            "late": windows.late,
            "dead_letters": (limited.dead_letters, scored_windows.dead_letters) | "ScoringDeadLetters" >> beam.Flatten(),
        }
