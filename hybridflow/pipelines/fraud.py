"""fraud: card-fraud detection, hybrid batch + streaming.

Batch layer: from a history of transactions, a spending profile per card
(count, mean and standard deviation of the amount, usual countries, last
seen), written as Parquet.

Scoring, the same transforms in both modes: parse + validate (dead letters)
-> enrich each transaction with its card profile -> per-transaction rules
(amount z-score against the profile, a country new for the card) -> sliding
windows of spend and count per card -> velocity rule -> alerts.

``--mode batch`` scores the input history against profiles built from it (or
from ``--profiles``); ``--mode streaming`` scores an unbounded input against
profiles from ``--profiles`` or built from a bounded ``--history``.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.io import ReadFrom, supports_columnar
from hybridflow.io.uri import parse_uri
from hybridflow.redaction import redact
from hybridflow.options import HybridflowOptions, duration_arg
from hybridflow.pipelines import PipelineSpec, register_pipeline
from hybridflow.schemas import CardProfile, Transaction
from hybridflow.transforms import (
    Enrich,
    MissingKeyPolicy,
    NotInRule,
    ParseRecords,
    Rule,
    ThresholdAlerts,
    WindowedAggregate,
    ZScoreRule,
)
from hybridflow.transforms.aggregations import Accumulator, Aggregation
from hybridflow.transforms.windows import window_spec

__all__ = ["FraudOptions", "BuildCardProfiles", "ScoreTransactions", "build", "sinks", "SPEC"]

_POPULATION = "seed=42&population=42&cards=2000"
DEFAULTS = {
    "batch": {
        "input": f"synthetic://transactions?count=40000&{_POPULATION}",
        "output": "output/fraud",
        "output_format": "jsonl",
        "window": "sliding:5m/1m",
        "allowed_lateness": 300.0,
        "cooldown": 600.0,
        "print_alerts": False,
    },
    "streaming": {
        "input": "synthetic://transactions?rate=20&seed=7&population=42&cards=2000&fraud=0.01",
        "output": "output/fraud-streaming",
        "output_format": "jsonl",
        "window": "sliding:5m/1m",
        "allowed_lateness": 300.0,
        "cooldown": 600.0,
        # alerts are printed as they are raised: a streaming run shows them live
        "print_alerts": True,
    },
}
DEFAULT_STREAMING_HISTORY = f"synthetic://transactions?count=40000&{_POPULATION}"


class FraudOptions(PipelineOptions):
    """Parameters of the fraud pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--history",
            default=None,
            help="Bounded transaction history to build card profiles from "
            "(batch: defaults to --input; streaming: a built-in synthetic history).",
        )
        parser.add_argument(
            "--profiles",
            default=None,
            help="Precomputed card profiles (Parquet/JSONL written by a batch run); overrides --history.",
        )
        parser.add_argument(
            "--velocity_threshold",
            type=int,
            default=10,
            help="Alert when a card has at least this many transactions in one window.",
        )
        parser.add_argument(
            "--zscore_threshold",
            type=float,
            default=4.0,
            help="Alert when an amount is this many standard deviations above the card's mean.",
        )
        parser.add_argument(
            "--min_history",
            type=int,
            default=5,
            help="Profile rules apply only to cards with at least this many past transactions.",
        )
        parser.add_argument(
            "--early_count",
            type=int,
            default=None,
            help="Streaming: fire an early window pane every N transactions of a card.",
        )
        parser.add_argument(
            "--early_every",
            type=duration_arg,
            default=None,
            help="Streaming: fire early window panes every so often (processing time, e.g. 10s; "
            "not on Flink, whose runner does not fire these timers).",
        )
        parser.add_argument(
            "--usual_country_share",
            type=float,
            default=0.1,
            help="A country is usual for a card if at least this share of its history is there.",
        )


def validate(options: PipelineOptions) -> None:
    fo = options.view_as(FraudOptions)
    hf = options.view_as(HybridflowOptions)
    if fo.velocity_threshold < 1:
        raise InvalidOptionError(f"--velocity_threshold={fo.velocity_threshold}: must be >= 1")
    if not 0 < fo.zscore_threshold < math.inf:  # nan fails too
        raise InvalidOptionError(
            f"--zscore_threshold={fo.zscore_threshold}: must be a finite number > 0 (standard deviations, e.g. 4)"
        )
    if not 0 < fo.usual_country_share <= 1:
        raise InvalidOptionError(f"--usual_country_share={fo.usual_country_share}: must be in (0, 1]")
    if fo.min_history < 0:
        raise InvalidOptionError(f"--min_history={fo.min_history}: must be >= 0")
    runner = str(options.view_as(StandardOptions).runner or "")
    if fo.early_every is not None and hf.mode == "streaming" and runner.rsplit(".", 1)[-1] == "FlinkRunner":
        raise InvalidOptionError(
            "--early_every needs processing-time timers, which Beam's Flink runner does not fire for this "
            "pipeline (no early pane, and the job never ends); use --early_count=N, or another runner"
        )
    if hf.mode == "streaming" and runner.rsplit(".", 1)[-1] == "SparkRunner":
        raise InvalidOptionError(
            "--mode=streaming: Beam's portable Spark runner does not support side inputs in streaming "
            "(the card profiles this pipeline joins); use --profile=flink or --profile=prism"
        )
    try:
        window_spec(hf.window)
    except Exception as exc:  # SchemaError names the accepted forms
        raise InvalidOptionError(f"--window={hf.window}: {exc}") from None
    for flag in ("input", "history", "profiles"):
        value = getattr(fo if flag != "input" else hf, flag)
        if value is not None:
            try:
                ReadFrom(value)
            except InvalidOptionError:
                raise
            except Exception as exc:  # noqa: BLE001 - turn any URI problem into a usage error
                raise InvalidOptionError(f"--{flag}={redact(value)}: {exc}") from None


# --------------------------------------------------------------------------
# Batch layer


class _ProfileCombineFn(beam.CombineFn):
    """count / mean / stddev of amount (exact), country counts, last seen."""

    def __init__(self):
        self._moments = Accumulator(
            [Aggregation("n", "count"), Aggregation("mean", "mean", "amount"), Aggregation("sd", "stddev", "amount")]
        )

    def create_accumulator(self):
        return [self._moments.create(), collections.Counter(), None]

    def add_input(self, acc, txn):
        self._moments.add(acc[0], txn)
        acc[1][txn.country] += 1
        if acc[2] is None or txn.event_time > acc[2]:
            acc[2] = txn.event_time
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        moments = self._moments.merge(a[0] for a in accs)
        countries = collections.Counter()
        for a in accs:
            countries.update(a[1])
        seen = [a[2] for a in accs if a[2] is not None]
        return [moments, countries, max(seen) if seen else None]

    def extract_output(self, acc):
        return acc


class BuildCardProfiles(beam.PTransform):
    """Transactions -> one :class:`~hybridflow.schemas.CardProfile` per card.

    Args:
      usual_country_share: a country is usual if at least this share of the
        card's transactions happened there.
    """

    def __init__(self, usual_country_share: float = 0.1):
        super().__init__()
        self._share = usual_country_share

    def expand(self, txns):
        from hybridflow.columnar import is_columnar

        if is_columnar(txns):
            from hybridflow.columnar.profiles import ProfileTables

            return txns | "ProfileTables" >> ProfileTables(self._share)
        share = self._share
        moments = Accumulator(
            [Aggregation("n", "count"), Aggregation("mean", "mean", "amount"), Aggregation("sd", "stddev", "amount")]
        )

        def to_profile(kv):
            card, (acc, countries, last_seen) = kv
            stats = moments.extract(acc)
            total = sum(countries.values())
            usual = sorted(c for c, n in countries.items() if n >= share * total)
            return CardProfile(
                card_id=card,
                txn_count=stats["n"],
                amount_mean=stats["mean"],
                amount_stddev=stats["sd"] if stats["sd"] is not None else 0.0,
                usual_countries=usual,
                last_seen=last_seen,
            )

        return (
            txns
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyByCard" >> beam.Map(lambda t: (t.card_id, t))
            | "Profile" >> beam.CombinePerKey(_ProfileCombineFn())
            | "ToProfile" >> beam.Map(to_profile).with_output_types(CardProfile)
        )


# --------------------------------------------------------------------------
# Graph


def _with_duration(uri: str, duration) -> str:
    """Adds ``duration=`` to an unbounded synthetic URI."""
    if duration is None or parse_uri(uri).scheme != "synthetic" or "duration=" in uri:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}duration={duration:g}"


class ScoreTransactions(beam.PTransform):
    """The scoring half of the fraud pipeline, the same in batch and streaming.

    Input: :class:`~hybridflow.schemas.Transaction` records (event-time
    timestamped). Output: a dict with ``alerts``, ``aggregates``, ``late``
    and ``dead_letters``.

    Args:
      profiles: a bounded PCollection of :class:`~hybridflow.schemas.CardProfile`.
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


def build(p: beam.Pipeline, options: PipelineOptions) -> dict[str, Any]:
    """Builds the fraud graph; returns its outputs by name."""
    hf = options.view_as(HybridflowOptions)
    fo = options.view_as(FraudOptions)
    batch = hf.mode == "batch"
    input_uri = hf.input if batch else _with_duration(hf.input, hf.duration)

    # Bounded JSON-lines / Parquet input runs columnar (Arrow tables, vectorized
    # transforms); the results are the per-element path's (hybridflow.columnar).
    columnar = batch and hf.columnar != "never" and supports_columnar(input_uri)
    parsed = (
        p
        | "ReadTransactions" >> ReadFrom(input_uri, bounded=batch, columnar=columnar)
        | "ParseTransactions" >> ParseRecords(Transaction, timestamp_unit=hf.timestamp_unit)
    )
    dead_letters = [parsed.dead_letters]
    outputs: dict[str, Any] = {}

    if fo.profiles:
        profile_rows = (
            p
            | "ReadProfiles" >> ReadFrom(fo.profiles, bounded=True, columnar=columnar and supports_columnar(fo.profiles))
            | "ParseProfiles" >> ParseRecords(CardProfile, timestamp_field=None)
        )
        profiles = profile_rows.records
        dead_letters.append(profile_rows.dead_letters)
    else:
        if batch and not fo.history:
            history = parsed.records
        else:
            history_uri = fo.history or DEFAULT_STREAMING_HISTORY
            history_rows = (
                p
                | "ReadHistory" >> ReadFrom(
                    history_uri, bounded=True, columnar=hf.columnar != "never" and supports_columnar(history_uri)
                )
                | "ParseHistory" >> ParseRecords(Transaction, timestamp_unit=hf.timestamp_unit)
            )
            history = history_rows.records
            dead_letters.append(history_rows.dead_letters)
        profiles = history | "BuildProfiles" >> BuildCardProfiles(fo.usual_country_share)
        outputs["profiles"] = profiles

    scored = parsed.records | "Score" >> ScoreTransactions(
        profiles,
        window=hf.window,
        velocity_threshold=fo.velocity_threshold,
        zscore_threshold=fo.zscore_threshold,
        min_history=fo.min_history,
        allowed_lateness=hf.allowed_lateness,
        cooldown=hf.cooldown,
        early_count=fo.early_count,
        early_every=fo.early_every,
    )
    dead_letters.append(scored["dead_letters"])
    outputs["alerts"] = scored["alerts"]
    outputs["aggregates"] = scored["aggregates"]
    outputs["late"] = scored["late"]
    outputs["dead_letters"] = tuple(dead_letters) | "AllDeadLetters" >> beam.Flatten()
    return outputs


def sinks(options: PipelineOptions) -> dict[str, str]:
    hf = options.view_as(HybridflowOptions)
    out = hf.output.rstrip("/")
    fmt = hf.output_format
    return {
        "alerts": f"{out}/alerts.{fmt}",
        "aggregates": f"{out}/aggregates.{fmt}",
        "profiles": f"{out}/profiles.parquet",
        "dead_letters": f"{out}/dead_letters.jsonl",
        "late": f"{out}/late.jsonl",
    }


SPEC = register_pipeline(
    PipelineSpec(
        name="fraud",
        description="Card fraud: batch card profiles from history + scoring of transactions (z-score, new country, velocity)",
        build=build,
        sinks=sinks,
        options_class=FraudOptions,
        common=(
            "mode", "input", "output", "output_format", "duration", "window", "allowed_lateness", "cooldown",
            "timestamp_unit", "columnar", "print_alerts",
        ),
        defaults=DEFAULTS,
        validate=validate,
    )
)
