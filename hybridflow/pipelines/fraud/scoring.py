"""The fraud pipeline's scoring, the same transforms in batch and streaming.

Transactions are enriched with their card's profile; per transaction, an
amount z-score against the profile and a country new for the card; per card,
sliding windows of spend and count, and a velocity rule on them.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam

from hybridflow.transforms import (
    Enrich,
    MissingKeyPolicy,
    NotInRule,
    Rule,
    ThresholdAlerts,
    WindowedAggregate,
    ZScoreRule,
)

__all__ = ["ScoreTransactions"]


class ScoreTransactions(beam.PTransform):
    """The scoring half of the fraud pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.pipelines.fraud.records.Transaction` records (event-time
    timestamped). Output: a dict with ``alerts``, ``aggregates``, ``late``
    and ``dead_letters``.

    Args:
      profiles: a bounded PCollection of :class:`~hybridflow.pipelines.fraud.records.CardProfile`.
      window: the per-card window (e.g. ``sliding:5m/1m``).
      velocity_threshold, zscore_threshold, min_history: rule parameters.
      allowed_lateness, cooldown: seconds.
      early_count, early_every: early (speculative) window panes in streaming
        every N records / every so many seconds of processing time.
    """

    def __init__(
        self,
        profiles: beam.PCollection,
        window: str = "sliding:5m/1m",
        velocity_threshold: int = 10,
        zscore_threshold: float = 4.0,
        min_history: int = 5,
        allowed_lateness: float = 300.0,
        cooldown: float = 600.0,
        early_count: Optional[int] = None,
        early_every: Optional[float] = None,
    ):
        super().__init__()
        self._trigger = {"early_count": early_count, "early_every": early_every}
        self._profiles = profiles
        self._window = window
        self._velocity_threshold = velocity_threshold
        self._zscore_threshold = zscore_threshold
        self._min_history = min_history
        self._allowed_lateness = allowed_lateness
        self._cooldown = cooldown

    def expand(self, txns):
        enriched = txns | "EnrichWithProfile" >> Enrich(
            self._profiles,
            key="card_id",
            fields=["txn_count", "amount_mean", "amount_stddev", "usual_countries"],
            prefix="profile_",
            on_missing=MissingKeyPolicy.NULLS,
        )
        transaction_alerts = enriched.records | "TransactionRules" >> ThresholdAlerts(
            [
                ZScoreRule(
                    "amount_zscore",
                    value_field="amount",
                    mean_field="profile_amount_mean",
                    stddev_field="profile_amount_stddev",
                    threshold=self._zscore_threshold,
                    count_field="profile_txn_count",
                    min_count=self._min_history,
                ),
                NotInRule(
                    "new_country",
                    field="country",
                    set_field="profile_usual_countries",
                    count_field="profile_txn_count",
                    min_count=self._min_history,
                ),
            ],
            key="card_id",
            cooldown=self._cooldown,
        )
        windows = enriched.records | "CardWindows" >> WindowedAggregate(
            key="card_id",
            window=self._window,
            aggregations={
                "txn_count": "count",
                "total_amount": "sum(amount)",
                "max_amount": "max(amount)",
                "countries": "count_distinct(country)",
            },
            allowed_lateness=self._allowed_lateness,
            trigger=self._trigger,
        )
        window_alerts = windows.aggregates | "VelocityRule" >> ThresholdAlerts(
            [Rule("velocity", field="txn_count", op=">=", threshold=self._velocity_threshold)],
            key="card_id",
            cooldown=self._cooldown,
        )
        return {
            "alerts": (transaction_alerts, window_alerts) | "AllAlerts" >> beam.Flatten(),
            "aggregates": windows.aggregates,
            "late": windows.late,
            "dead_letters": enriched.dead_letters,
        }
