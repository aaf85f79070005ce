"""The fraud pipeline's batch layer: one spending profile per card from history.

:class:`BuildCardProfiles` computes, per card, the count, the exact mean and
standard deviation of the amount (:class:`~hybridflow.transforms.aggregations.Accumulator`),
the usual countries and the last event time: per element on records, or
vectorized on Arrow tables (the columnar batch path, :mod:`hybridflow.columnar`)
with one hash-partitioned GroupByKey by card and the same results.
"""

from __future__ import annotations

import collections

import apache_beam as beam
from apache_beam.typehints import typehints

from hybridflow.columnar import arrow_tables, is_columnar
from hybridflow.columnar.aggregate import DEFAULT_PARTITIONS, _AggregatePartition, _AssignAndPartition, _codes
from hybridflow.metrics import counter
from hybridflow.pipelines.fraud.records import CardProfile
from hybridflow.transforms.aggregations import Accumulator, Aggregation

__all__ = ["BuildCardProfiles", "ProfileTables"]

#: count, mean and standard deviation of the amount: what a profile keeps of a card's amounts
_MOMENTS = [Aggregation("n", "count"), Aggregation("mean", "mean", "amount"), Aggregation("sd", "stddev", "amount")]


class _ProfileCombineFn(beam.CombineFn):
    """count / mean / stddev of amount (exact), country counts, last seen."""

    def __init__(self):
        self._moments = Accumulator(_MOMENTS)

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
    """Transactions -> one :class:`~hybridflow.pipelines.fraud.records.CardProfile` per card.

    Args:
      usual_country_share: a country is usual if at least this share of the
        card's transactions happened there.
    """

    def __init__(self, usual_country_share: float = 0.1):
        super().__init__()
        self._share = usual_country_share

    def expand(self, txns):
        if is_columnar(txns):
            return txns | "ProfileTables" >> ProfileTables(self._share)
        share = self._share
        moments = Accumulator(_MOMENTS)

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


class _ProfilePartition(beam.DoFn):
    def __init__(self, share: float):
        self._share = share

    def setup(self):
        from hybridflow.io.files import arrow_schema

        self._schema = arrow_schema(CardProfile)
        self._moments = _AggregatePartition("card_id", None, (), None)
        self._out = counter("records_out")

    def process(self, element):
        import numpy as np
        import pyarrow as pa

        _, tables = element
        table = pa.concat_tables(list(tables))
        gid, cards = _codes(table.column("card_id"))
        ngroups = len(cards)
        n = np.bincount(gid, minlength=ngroups)
        mean = self._moments.aggregate(Aggregation("mean", "mean", "amount"), table, gid, ngroups, n)
        sd = self._moments.aggregate(Aggregation("sd", "stddev", "amount"), table, gid, ngroups, n).fill_null(0.0)
        micros = table.column("event_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        last = pa.table({"g": pa.array(gid), "t": micros}).group_by("g").aggregate([("t", "max")])
        last_seen = np.zeros(ngroups, dtype=np.int64)
        last_seen[last.column("g").to_numpy()] = last.column("t_max").to_numpy()
        country_codes, countries = _codes(table.column("country"))
        width = len(countries) + 1
        pairs, pair_counts = np.unique(gid * width + country_codes, return_counts=True)
        pair_group = pairs // width
        usual_mask = pair_counts >= self._share * n[pair_group]
        names = countries.to_pylist()
        usual: list = [[] for _ in range(ngroups)]
        for g, c in zip(pair_group[usual_mask].tolist(), (pairs[usual_mask] % width).tolist()):
            usual[g].append(names[c])
        for lst in usual:
            lst.sort()
        self._out.inc(ngroups)
        yield pa.table(
            [
                cards.cast(pa.string()),
                pa.array(n, pa.int64()),
                mean.cast(pa.float64()),
                sd.cast(pa.float64()),
                pa.array(usual, pa.list_(pa.string())),
                pa.array(last_seen, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            ],
            schema=self._schema,
        )


class ProfileTables(beam.PTransform):
    """The columnar implementation behind :class:`BuildCardProfiles`."""

    def __init__(self, usual_country_share: float, partitions: int = DEFAULT_PARTITIONS):
        super().__init__()
        self._share = usual_country_share
        self._partitions = partitions

    def expand(self, txns):
        return (
            txns
            | "Partition" >> beam.ParDo(
                _AssignAndPartition("card_id", None, ["amount", "country", "event_time"], None, self._partitions)
            ).with_output_types(typehints.Tuple[int, arrow_tables()])
            | "Shuffle" >> beam.GroupByKey()
            | "Profile" >> beam.ParDo(_ProfilePartition(self._share)).with_output_types(arrow_tables(CardProfile))
        )
