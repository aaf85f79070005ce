"""The health pipeline's scoring, the same transforms in batch and streaming.

Per observation: the patient's identifying data is dropped and the
early-warning score added (:func:`early_warning_score`, :class:`ScoreVitals`).
Per patient: sliding windows of the score and of the vital signs, joined
with the patient's own baseline (``Enrich`` by patient), and four rules
(:data:`RULES`): the window's mean score reaches the urgent-response level,
and the heart rate, respiration rate or glucose of the window drifted from
the patient's own baseline (z-score); at most one alert per rule and patient
in a cooldown (``ThresholdAlerts(cooldown=...)``).

The early-warning score follows the NEWS2 chart (Royal College of
Physicians, 2017) for the five parameters a monitor measures; NEWS2's other
two (level of consciousness, supplemental oxygen) are not in the feed and
count 0:

============================  =====  =========  =========  =========  =========  =========  =====
parameter                     3      2          1          0          1          2          3
============================  =====  =========  =========  =========  =========  =========  =====
respiration rate (/min)       ≤ 8               9-11       12-20                 21-24      ≥ 25
SpO2 (%, scale 1)             ≤ 91   92-93      94-95      ≥ 96
systolic BP (mmHg)            ≤ 90   91-100     101-110    111-219                          ≥ 220
pulse (/min)                  ≤ 40              41-50      51-90      91-110     111-130    ≥ 131
temperature (°C)              ≤ 35.0            35.1-36.0  36.1-38.0  38.1-39.0  ≥ 39.1
============================  =====  =========  =========  =========  =========  =========  =====

(a value between two bands, such as a respiration rate of 20.5, scores as
the band above it.)
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.pipelines.health.baselines import BASELINE_FIELDS, DRIFT_VITALS
from hybridflow.pipelines.health.records import ScoredVitals
from hybridflow.transforms import Enrich, MissingKeyPolicy, Rule, ThresholdAlerts, WindowedAggregate, ZScoreRule

__all__ = ["early_warning_score", "ScoreVitals", "ScoreWindows", "EWS_BANDS", "RULES", "WINDOW_AGGREGATIONS"]

#: per parameter, ``(upper bound, points)`` bands from low to high: a value
#: scores the points of the first band whose upper bound it does not exceed
EWS_BANDS = {
    "resp_rate": ((8, 3), (11, 1), (20, 0), (24, 2), (float("inf"), 3)),
    "spo2": ((91, 3), (93, 2), (95, 1), (float("inf"), 0)),
    "systolic_bp": ((90, 3), (100, 2), (110, 1), (219, 0), (float("inf"), 3)),
    "heart_rate": ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (float("inf"), 3)),
    "temperature": ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (float("inf"), 2)),
}
#: the smallest standard deviation a drift rule divides by (beats/min, breaths/min, mmol/L)
_MIN_STDDEV = {"heart_rate": 2.0, "resp_rate": 1.0, "glucose": 0.3}
#: NEWS2's aggregate score for an urgent response
URGENT_SCORE = 5.0
#: the rules, in the order they are evaluated
RULES = ("early_warning",) + tuple(f"{v}_drift" for v in DRIFT_VITALS)
#: what each window holds
WINDOW_AGGREGATIONS = {
    "readings": "count",
    "ews_mean": "mean(ews)",
    "ews_max": "max(ews)",
    "spo2_min": "min(spo2)",
    **{f"{v}_mean": f"mean({v})" for v in DRIFT_VITALS},
}


def early_warning_score(vitals) -> int:
    """The NEWS2 score of an observation's five measured parameters (0-15)."""
    total = 0
    for name, bands in EWS_BANDS.items():
        value = getattr(vitals, name)
        for upper, points in bands:
            if value <= upper:
                total += points
                break
    return total


def _scored(v) -> ScoredVitals:
    return ScoredVitals(
        observation_id=v.observation_id, patient_id=v.patient_id, ward=v.ward, heart_rate=v.heart_rate,
        spo2=v.spo2, resp_rate=v.resp_rate, temperature=v.temperature, systolic_bp=v.systolic_bp,
        glucose=v.glucose, ews=early_warning_score(v), event_time=v.event_time,
    )


class ScoreVitals(beam.PTransform):
    """:class:`~hybridflow.pipelines.health.records.VitalSigns` ->
    :class:`~hybridflow.pipelines.health.records.ScoredVitals`: the
    identifying fields dropped, the early-warning score added; element
    timestamps kept."""

    def expand(self, observations):
        return observations | "DropPhiAndScore" >> beam.Map(_scored).with_output_types(ScoredVitals)


class ScoreWindows(beam.PTransform):
    """The scoring half of the health pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.pipelines.health.records.ScoredVitals`
    (event-time timestamped). Output: a dict with ``alerts``, ``aggregates``
    (the windows, with the patient's baseline), ``late`` and ``dead_letters``.

    Args:
      baselines: a bounded PCollection of baseline rows
        (:class:`~hybridflow.pipelines.health.baselines.BuildBaselines`).
      window: the per-patient window (e.g. ``sliding:10m/2m``).
      urgent_score: the window mean early-warning score that raises ``early_warning``.
      zscore_threshold: a window mean this many of the patient's standard
        deviations above their baseline mean is a drift.
      min_history: drift rules apply to patients with at least this many
        observations in their baseline.
      allowed_lateness, cooldown: seconds.
    """

    def __init__(
        self,
        baselines: beam.PCollection,
        window: str = "sliding:10m/2m",
        urgent_score: float = URGENT_SCORE,
        zscore_threshold: float = 3.0,
        min_history: int = 30,
        allowed_lateness: float = 300.0,
        cooldown: float = 1800.0,
    ):
        super().__init__()
        self._baselines = baselines
        self._window = window
        self._urgent_score = urgent_score
        self._zscore_threshold = zscore_threshold
        self._min_history = min_history
        self._allowed_lateness = allowed_lateness
        self._cooldown = cooldown

    def expand(self, scored):
        windows = scored | "PatientWindows" >> WindowedAggregate(
            key="patient_id", window=self._window, aggregations=dict(WINDOW_AGGREGATIONS),
            allowed_lateness=self._allowed_lateness,
        )
        with_baseline = windows.aggregates | "EnrichWithBaseline" >> Enrich(
            self._baselines, key="patient_id", fields=list(BASELINE_FIELDS), prefix="baseline_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        rules = [Rule("early_warning", field="ews_mean", op=">=", threshold=self._urgent_score)]
        rules += [
            ZScoreRule(
                f"{v}_drift",
                value_field=f"{v}_mean",
                mean_field=f"baseline_{v}_mean",
                stddev_field=f"baseline_{v}_stddev",
                threshold=self._zscore_threshold,
                count_field="baseline_readings",
                min_count=self._min_history,
                min_stddev=_MIN_STDDEV[v],
            )
            for v in DRIFT_VITALS
        ]
        alerts = with_baseline.records | "Rules" >> ThresholdAlerts(rules, key="patient_id", cooldown=self._cooldown)
        return {
            "alerts": alerts,
            "aggregates": with_baseline.records,
            "late": windows.late,
            "dead_letters": with_baseline.dead_letters,
        }
