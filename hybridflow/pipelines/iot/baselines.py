"""The iot pipeline's batch layer: one baseline per machine from history.

:class:`BuildBaselines` computes, per machine, the number of readings and the
exact mean and standard deviation of each sensor
(:class:`~hybridflow.transforms.Summarize`, the accumulator every aggregation
of the package uses): the normal behaviour the streaming layer compares each
machine's sliding windows with.
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.transforms import Summarize

__all__ = ["BuildBaselines", "SENSORS", "BASELINE_FIELDS"]

#: the sensors a baseline describes
SENSORS = ("temperature", "vibration")
#: the fields of a baseline row besides machine_id
BASELINE_FIELDS = ("readings",) + tuple(f"{s}_{stat}" for s in SENSORS for stat in ("mean", "stddev"))


class BuildBaselines(beam.PTransform):
    """:class:`~hybridflow.pipelines.iot.records.SensorReading` records -> one row per machine:
    ``machine_id, readings, temperature_mean, temperature_stddev, vibration_mean, vibration_stddev``."""

    def expand(self, readings):
        aggregations = {"readings": "count"}
        for sensor in SENSORS:
            aggregations[f"{sensor}_mean"] = f"mean({sensor})"
            aggregations[f"{sensor}_stddev"] = f"stddev({sensor})"
        return readings | "Summarize" >> Summarize(key="machine_id", aggregations=aggregations)
