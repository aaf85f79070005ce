"""fraud: card-fraud detection, hybrid batch + streaming (a built-in pipeline).

The package is what any pipeline package holds:

- :mod:`~hybridflow.pipelines.fraud.records`: :class:`Transaction`, :class:`CardProfile`;
- :mod:`~hybridflow.pipelines.fraud.generator`: ``synthetic://transactions`` (:class:`SyntheticTransactions`);
- :mod:`~hybridflow.pipelines.fraud.profiles`: the batch layer, :class:`BuildCardProfiles`;
- :mod:`~hybridflow.pipelines.fraud.scoring`: the scoring of both modes, :class:`ScoreTransactions`;
- :mod:`~hybridflow.pipelines.fraud.report`: its sections of ``hybridflow report fraud``;
- :mod:`~hybridflow.pipelines.fraud.pipeline`: parameters, ``build``, ``sinks`` and :data:`SPEC`,
  declared as the entry point ``fraud`` of the group ``hybridflow.pipelines``.
"""

from hybridflow.pipelines.fraud.generator import SyntheticTransactions
from hybridflow.pipelines.fraud.pipeline import SPEC, FraudOptions, build, sinks
from hybridflow.pipelines.fraud.profiles import BuildCardProfiles
from hybridflow.pipelines.fraud.records import CardProfile, Transaction, transactions
from hybridflow.pipelines.fraud.scoring import ScoreTransactions

__all__ = [
    "SPEC", "FraudOptions", "build", "sinks", "BuildCardProfiles", "ScoreTransactions", "SyntheticTransactions",
    "Transaction", "CardProfile", "transactions",
]
