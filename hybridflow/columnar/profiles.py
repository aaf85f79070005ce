"""Vectorized BuildCardProfiles: Arrow tables of transactions -> tables of card profiles.

One hash-partitioned GroupByKey by card; per partition, the count, the exact
mean and standard deviation of the amount (the same accumulator results as
the per-element CombineFn), the usual countries and the last event time of
every card at once.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.typehints import typehints

from hybridflow.columnar import arrow_tables
from hybridflow.columnar.aggregate import DEFAULT_PARTITIONS, _AggregatePartition, _AssignAndPartition, _codes
from hybridflow.metrics import counter
from hybridflow.schemas import CardProfile
from hybridflow.transforms.aggregations import Aggregation

__all__ = ["ProfileTables"]


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
    """The columnar implementation behind ``BuildCardProfiles``."""

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
