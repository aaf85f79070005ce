"""TopPerWindow: the tie rule, per-record = columnar, batch = streaming, Nexmark Q5 and Q7."""

import collections
import itertools
import random
from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import SchemaError, TopPerWindow, WindowedAggregate
from hybridflow.columnar import ToRecords, ToTables
from hybridflow.schemas import register
from hybridflow.testing import START, Collect, CreateEvents, EventStream, Watermark, batch_pipeline, collected, streaming_pipeline
from hybridflow.transforms.top import Ties, TopRows


@register
class Bid(NamedTuple):
    auction: int
    bidder: str
    price: int
    fee: Optional[float]
    date_time: Timestamp


def bids(seed, n=300):
    """Few prices and auctions, so that ties are common; some fees null or NaN."""
    rng = random.Random(seed)
    return [
        Bid(
            auction=rng.randrange(5),
            bidder=rng.choice(["ann", "bob", "cy", "dee"]),
            price=rng.choice([1, 5, 5, 9, 2**60]),
            fee=rng.choice([None, float("nan"), 0.5, 0.5, 2.0, -1.0]),
            date_time=START + rng.choice([0, 9.999, 10, 19.5, rng.uniform(0, 60)]),
        )
        for _ in range(n)
    ]


def comparable(row):
    """A row as sorted (field, value) pairs, NaN as text (NaN != NaN)."""
    values = row._asdict() if hasattr(row, "_asdict") else row.as_dict()
    return tuple(sorted((k, "nan" if v != v else v) for k, v in values.items()))


def run(events, transform, tmp_path, name, columnar=False):
    """The rows ``transform`` gives on ``events`` (batch), as sorted tuples of (field, value) pairs."""
    with batch_pipeline() as p:
        records = p | CreateEvents(events, "date_time")
        if columnar:
            tables = records | ToTables("date_time", batch_size=70)
            rows = (tables | transform).rows | ToRecords()
        else:
            rows = (records | transform).rows
        _ = rows | beam.Map(comparable) | Collect(tmp_path / name)
    return sorted(collected(tmp_path / name), key=repr)


class TestRule:
    ROWS = [Bid(1, b, p, None, START) for b, p in [("cy", 5), ("ann", 9), ("bob", 5), ("dee", 9), ("ann", 5)]]

    @pytest.mark.parametrize("k, ties, expected", [
        (1, "all", ["ann", "dee"]),
        (1, "first", ["ann"]),
        (2, "all", ["ann", "dee"]),
        (3, "all", ["ann", "dee", "ann", "bob", "cy"]),
        (3, "first", ["ann", "dee", "ann"]),
    ])
    def test_the_same_rows_in_any_order_and_any_merge(self, k, ties, expected):
        top = TopRows("price", k, Ties(ties), Bid._fields)
        for perm in itertools.permutations(self.ROWS):
            halves = [top.create(), top.create()]
            for i, row in enumerate(perm):
                top.add(halves[i % 2], row)
            assert [r.bidder for r in top.extract(top.merge(halves))] == expected

    def test_null_and_nan_never_rank(self):
        top = TopRows("fee", 1, Ties.ALL, Bid._fields)
        acc = top.create()
        for fee in (None, float("nan"), -1.0):
            top.add(acc, Bid(1, "ann", 1, fee, START))
        assert [r.fee for r in top.extract(acc)] == [-1.0]


class TestConstruction:
    def test_bad_arguments(self):
        with pytest.raises(SchemaError, match="ties='most'"):
            TopPerWindow(by="price", ties="most", window="fixed:10s")
        with pytest.raises(SchemaError, match="k=0"):
            TopPerWindow(by="price", k=0, window="fixed:10s")
        with pytest.raises(SchemaError, match="session"):
            TopPerWindow(by="price", window="session:10s")

    @pytest.mark.parametrize("transform, message", [
        (TopPerWindow(by="cost", window="fixed:10s"), "by='cost' is not a field"),
        (TopPerWindow(by="price", key="seller", window="fixed:10s"), "key 'seller' is not a field"),
        (TopPerWindow(by="price"), "name no window"),
    ])
    def test_schema_checked_when_applied(self, transform, message):
        with pytest.raises(SchemaError, match=message):
            with batch_pipeline() as p:
                _ = p | CreateEvents(bids(1, 3), "date_time") | transform

    def test_a_field_without_order_is_named(self):
        class Tagged(NamedTuple):
            tags: list[str]
            date_time: Timestamp

        register(Tagged)
        with pytest.raises(SchemaError, match="by='tags' has type str\\[\\].*no order"):
            with batch_pipeline() as p:
                _ = p | CreateEvents([Tagged(["a"], START)], "date_time") | TopPerWindow(by="tags", window="fixed:10s")


@pytest.mark.parametrize("by, k, ties, key, window", [
    ("price", 1, "all", None, "fixed:10s"),
    ("price", 1, "first", "auction", "sliding:20s/10s"),
    ("price", 2, "all", ["auction", "bidder"], "fixed:10s"),
    ("fee", 3, "first", None, "sliding:30s/10s"),
    ("bidder", 2, "all", "auction", "fixed:30s"),
    ("date_time", 1, "first", None, "fixed:10s"),
])
def test_columnar_equals_per_record(by, k, ties, key, window, tmp_path):
    events = bids(sum(map(ord, f"{by}{k}{ties}{key}{window}")))
    transform = TopPerWindow(by=by, k=k, ties=ties, key=key, window=window)
    records = run(events, transform, tmp_path, "records")
    assert len(records) >= 3
    assert run(events, transform, tmp_path, "columnar", columnar=True) == records


@pytest.mark.streaming
@pytest.mark.parametrize("ties", ["all", "first"])
def test_streaming_equals_batch(ties, tmp_path):
    events = bids(3, 120)
    transform = dict(by="price", k=2, ties=ties, key="auction", window="sliding:20s/10s")
    batch = run(events, TopPerWindow(**transform), tmp_path, "batch")
    ordered = sorted(events, key=lambda b: b.date_time)
    with streaming_pipeline() as p:
        items = ordered[:60] + [Watermark(ordered[59].date_time)] + ordered[60:]
        rows = (p | EventStream(items, "date_time") | TopPerWindow(**transform)).rows
        _ = rows | beam.Map(comparable) | Collect(tmp_path / "stream")
    assert sorted(collected(tmp_path / "stream"), key=repr) == batch


# -- Nexmark-shaped queries, with the public API only, against plain Python -----------


def _window_of(t: Timestamp, size: int) -> int:
    return (t.micros - t.micros % (size * 10**6)) // 10**6


def test_q7_highest_bid_per_window(tmp_path):
    events = bids(7, 400)
    expected = collections.defaultdict(list)
    for b in events:
        expected[_window_of(b.date_time, 10)].append(b)
    want = sorted(
        (w, b.auction, b.bidder, b.price)
        for w, window_bids in expected.items()
        for b in window_bids
        if b.price == max(x.price for x in window_bids)
    )
    for columnar in (False, True):
        rows = run(events, TopPerWindow(by="price", window="fixed:10s"), tmp_path, f"q7{columnar}", columnar)
        got = sorted(
            (d["window_start"].micros // 10**6, d["auction"], d["bidder"], d["price"]) for d in map(dict, rows)
        )
        assert got == want


def test_q5_hot_items_per_sliding_window(tmp_path):
    events = bids(5, 400)
    counts = collections.Counter()
    for b in events:
        last = _window_of(b.date_time, 10)
        for start in (last - 10, last):  # sliding 20 s every 10 s
            counts[(start, b.auction)] += 1
    per_window = collections.defaultdict(dict)
    for (start, auction), n in counts.items():
        per_window[start][auction] = n
    want = sorted(
        (start, auction, n)
        for start, auctions in per_window.items()
        for auction, n in auctions.items()
        if n == max(auctions.values())
    )
    for columnar in (False, True):
        with batch_pipeline() as p:
            records = p | CreateEvents(events, "date_time")
            if columnar:
                records = records | ToTables("date_time", batch_size=90)
            hot = (
                records
                | WindowedAggregate(key="auction", window="sliding:20s/10s", aggregations={"num": "count"})
            ).aggregates | TopPerWindow(by="num")
            rows = hot.rows | ToRecords() if columnar else hot.rows
            _ = rows | beam.Map(
                lambda r: (r.window_start.micros // 10**6 - START.micros // 10**6, r.auction, r.num)
            ) | Collect(tmp_path / f"q5{columnar}")
        got = sorted(collected(tmp_path / f"q5{columnar}"))
        assert got == [(s - START.micros // 10**6, a, n) for s, a, n in want]


def test_docs_example_runs(tmp_path, capsys, monkeypatch):
    """docs/transforms.md's TopPerWindow example runs as written and prints what the page shows.
    It runs as a module of its own (in sys.modules), as a user's script would, so that its record
    classes pickle by reference with every Beam of the supported range."""
    import sys
    import types

    from tests._docs import example, printed

    module = types.ModuleType("docs_top_per_window")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(example("transforms.md", "top-per-window", "python"), "docs/transforms.md", "exec"), module.__dict__)
    module.run(str(tmp_path))
    assert capsys.readouterr().out == printed("transforms.md", "top-per-window")
