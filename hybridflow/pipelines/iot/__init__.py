"""iot: predictive maintenance of a machine fleet, hybrid batch + streaming (a built-in pipeline).

The package is what any pipeline package holds (the layout of
:mod:`hybridflow.pipelines.fraud`):

- :mod:`~hybridflow.pipelines.iot.records`: :class:`SensorReading`, :class:`ModelLimits`;
- :mod:`~hybridflow.pipelines.iot.generator`: ``synthetic://readings`` (:class:`SyntheticReadings`);
- :mod:`~hybridflow.pipelines.iot.baselines`: the batch layer, :class:`BuildBaselines`;
- :mod:`~hybridflow.pipelines.iot.scoring`: the scoring of both modes, :class:`ScoreReadings`;
- :mod:`~hybridflow.pipelines.iot.report`: its sections of ``hybridflow report iot``;
- :mod:`~hybridflow.pipelines.iot.pipeline`: parameters, ``build``, ``sinks`` and :data:`SPEC`,
  declared as the entry point ``iot`` of the group ``hybridflow.pipelines``.
"""

from hybridflow.pipelines.iot.baselines import BuildBaselines
from hybridflow.pipelines.iot.generator import SyntheticReadings
from hybridflow.pipelines.iot.pipeline import SPEC, IotOptions, build, sinks
from hybridflow.pipelines.iot.records import MODEL_LIMITS, ModelLimits, SensorReading, readings
from hybridflow.pipelines.iot.scoring import ScoreReadings

__all__ = [
    "SPEC", "IotOptions", "build", "sinks", "BuildBaselines", "ScoreReadings", "SyntheticReadings",
    "SensorReading", "ModelLimits", "MODEL_LIMITS", "readings",
]
