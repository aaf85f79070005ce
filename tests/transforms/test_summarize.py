"""Summarize: per key over a bounded input, one key field or several."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import SchemaError
from hybridflow.testing import CreateEvents, batch_pipeline, transactions
from hybridflow.transforms import Summarize

TXNS = [t._replace(country=k) for t, k in zip(
    transactions([("c1", 10.0, 5), ("c1", 20.0, 70), ("c1", 4.0, 80), ("c2", 7.5, 9)]), ("US", "US", "FR", "US"))]


def test_a_composite_key_gives_one_row_per_combination_with_each_key_field():
    with batch_pipeline() as p:
        rows = p | CreateEvents(TXNS) | Summarize(key=["card_id", "country"],
                                                  aggregations={"n": "count", "total": "sum(amount)"})
        assert_that(rows | beam.Map(lambda r: (r.card_id, r.country, r.n, r.total)),
                    equal_to([("c1", "US", 2, 30.0), ("c1", "FR", 1, 4.0), ("c2", "US", 1, 7.5)]))


@pytest.mark.parametrize("key, message", [
    (None, "give the key field"),
    (["card_id", "card_id"], "repeated"),
    (["card_id", "n"], r"aggregation names \['n'\] clash with the key fields"),
])
def test_bad_keys_fail_at_construction(key, message):
    with pytest.raises(SchemaError, match=message):
        Summarize(key=key, aggregations={"n": "count"})
