"""The batch session combiner of WindowedAggregate merges like Beam's Sessions,
whatever the order and bundling of its input."""

import random

from hybridflow.testing import transactions
from hybridflow.transforms.aggregate import _Sessions
from hybridflow.transforms.aggregations import Accumulator, parse_aggregations
from hybridflow.transforms.windows import window_spec

GAP = 10_000_000  # session:10s


def _combiner():
    return _Sessions(Accumulator(parse_aggregations({"n": "count", "total": "sum(amount)"})), window_spec("session:10s"))


def _sessions(fn, accumulator):
    return [(start, end, fn._acc.extract(acc)["n"]) for start, end, acc in fn.extract_output(accumulator)]


def _add_all(fn, timed):
    acc = fn.create_accumulator()
    for item in timed:
        acc = fn.add_input(acc, item)
    return acc


def test_sessions_merge_like_beam_sessions():
    fn = _combiner()
    times = [0, 5, 30, 50, 58, 45]  # seconds; 50 joins 58, and 45 comes late into that session
    timed = [(t * 1_000_000, r) for t, r in zip(times, transactions([("c", 1.0, t) for t in times]))]
    assert _sessions(fn, _add_all(fn, timed)) == [
        (0, 15_000_000, 2),
        (30_000_000, 40_000_000, 1),
        (45_000_000, 68_000_000, 3),
    ]
    # touching is not overlapping: [0, 10) and [10, 20) stay apart, as in Beam
    timed = [(t, r) for t, r in zip((0, GAP), transactions([("c", 1.0, 0), ("c", 1.0, 10)]))]
    assert [s[:2] for s in _sessions(fn, _add_all(fn, timed))] == [(0, GAP), (GAP, 2 * GAP)]


def test_sessions_do_not_depend_on_order_or_bundles():
    fn = _combiner()
    rng = random.Random(3)
    seconds = [round(rng.uniform(0, 900), 3) for _ in range(60)]
    timed = [(round(t * 1e6), r) for t, r in zip(seconds, transactions([("c", float(i), t) for i, t in enumerate(seconds)]))]
    expected = _sessions(fn, _add_all(fn, sorted(timed, key=lambda x: x[0])))
    assert len(expected) > 5
    for _ in range(5):
        rng.shuffle(timed)
        cuts = sorted(rng.sample(range(1, len(timed)), 6))
        parts = [timed[a:b] for a, b in zip([0, *cuts], [*cuts, len(timed)])]
        merged = fn.merge_accumulators([_add_all(fn, part) for part in parts])
        assert _sessions(fn, merged) == expected
