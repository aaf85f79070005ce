"""The health pipeline's batch layer: one baseline per patient from history.

:class:`BuildBaselines` computes, per patient, the number of observations,
the exact mean and standard deviation of the vital signs the drift rules
compare (heart rate, respiration rate, glucose) and the mean early-warning
score (:class:`~hybridflow.transforms.Summarize`): the patient's own normal,
which the streaming layer compares each window with. It reads
:class:`~hybridflow.pipelines.health.records.ScoredVitals`, so no baseline
holds identifying data.
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.transforms import Summarize

__all__ = ["BuildBaselines", "DRIFT_VITALS", "BASELINE_FIELDS"]

#: the vital signs a baseline describes (the drift rules' vitals)
DRIFT_VITALS = ("heart_rate", "resp_rate", "glucose")
#: the fields of a baseline row besides patient_id
BASELINE_FIELDS = ("readings", "ews_mean") + tuple(f"{v}_{stat}" for v in DRIFT_VITALS for stat in ("mean", "stddev"))


class BuildBaselines(beam.PTransform):
    """:class:`~hybridflow.pipelines.health.records.ScoredVitals` -> one row per patient:
    ``patient_id, readings, ews_mean, heart_rate_mean, heart_rate_stddev, ...``."""

    def expand(self, scored):
        aggregations = {"readings": "count", "ews_mean": "mean(ews)"}
        for vital in DRIFT_VITALS:
            aggregations[f"{vital}_mean"] = f"mean({vital})"
            aggregations[f"{vital}_stddev"] = f"stddev({vital})"
        return scored | "Summarize" >> Summarize(key="patient_id", aggregations=aggregations)
