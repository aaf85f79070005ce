"""health: early warning for deteriorating patients, hybrid batch + streaming (a built-in pipeline).

The package is what any pipeline package holds (the layout of
:mod:`hybridflow.pipelines.iot`):

- :mod:`~hybridflow.pipelines.health.records`: :class:`VitalSigns` (with the
  PHI fields it declares ``sensitive``), :class:`ScoredVitals`;
- :mod:`~hybridflow.pipelines.health.generator`: ``synthetic://vitals`` (:class:`SyntheticVitals`);
- :mod:`~hybridflow.pipelines.health.baselines`: the batch layer, :class:`BuildBaselines`;
- :mod:`~hybridflow.pipelines.health.scoring`: the NEWS2 score and the scoring of both modes,
  :class:`ScoreVitals`, :class:`ScoreWindows`;
- :mod:`~hybridflow.pipelines.health.report`: its sections of ``hybridflow report health``;
- :mod:`~hybridflow.pipelines.health.pipeline`: parameters, ``build``, ``sinks`` and :data:`SPEC`,
  declared as the entry point ``health`` of the group ``hybridflow.pipelines``.
"""

from hybridflow.pipelines.health.baselines import BuildBaselines
from hybridflow.pipelines.health.generator import SyntheticVitals
from hybridflow.pipelines.health.pipeline import SPEC, HealthOptions, build, sinks
from hybridflow.pipelines.health.records import PHI_FIELDS, ScoredVitals, VitalSigns, vitals
from hybridflow.pipelines.health.scoring import EWS_BANDS, ScoreVitals, ScoreWindows, early_warning_score

__all__ = [
    "SPEC", "HealthOptions", "build", "sinks", "BuildBaselines", "ScoreVitals", "ScoreWindows", "SyntheticVitals",
    "VitalSigns", "ScoredVitals", "PHI_FIELDS", "vitals", "EWS_BANDS", "early_warning_score",
]
