"""The sketches behind approx_distinct and percentile: deterministic, mergeable, accurate."""

import hashlib
import pickle
import random
import subprocess
import sys

import pytest

from hybridflow.transforms.sketches import (
    RELATIVE_ACCURACY,
    SPARSE_LIMIT,
    DistinctSketch,
    QuantileSketch,
    merged,
    stable_hash,
)
from hybridflow.testing import START


def build(cls, values, parts):
    """A sketch of `values` split round-robin into `parts` partial sketches, then merged."""
    sketches = [cls() for _ in range(parts)]
    for i, v in enumerate(values):
        sketches[i % parts].add(v)
    return merged(pickle.loads(pickle.dumps(s)) for s in sketches)


def test_stable_hash_is_blake2b_and_the_same_in_another_process():
    assert stable_hash("abc") == int.from_bytes(hashlib.blake2b(b"sabc", digest_size=8).digest(), "big")
    code = "from hybridflow.transforms.sketches import stable_hash; print(stable_hash('card-7'), stable_hash(2.5))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123"}).stdout.split()
    assert [int(x) for x in other] == [stable_hash("card-7"), stable_hash(2.5)]
    assert stable_hash(1) == stable_hash(1.0) == stable_hash(True)  # equal values, one hash
    assert stable_hash(START) != stable_hash(START + 1)


@pytest.mark.parametrize("n", [0, 1, 500, SPARSE_LIMIT, 50_000])
def test_distinct_is_order_and_merge_independent(n):
    rng = random.Random(n)
    values = [f"v{i}" for i in range(n)] * 2
    estimates = set()
    for parts in (1, 3, 7):
        rng.shuffle(values)
        estimates.add(build(DistinctSketch, values, parts).estimate())
    assert len(estimates) == 1
    estimate = estimates.pop()
    if n <= SPARSE_LIMIT:
        assert estimate == n  # exact while sparse
    else:
        assert abs(estimate - n) / n < 0.05  # standard error ~1.6 %


def test_quantiles_are_order_and_merge_independent_and_within_relative_error():
    rng = random.Random(5)
    values = [rng.lognormvariate(3, 1.2) for _ in range(5000)] + [0.0, -3.0, -40.0]
    exact = sorted(values)
    results = set()
    for parts in (1, 4, 9):
        rng.shuffle(values)
        sketch = build(QuantileSketch, values, parts)
        results.add(tuple(sketch.quantile(q) for q in (0, 0.01, 0.5, 0.95, 0.99, 1)))
    assert len(results) == 1
    qs = dict(zip((0, 0.01, 0.5, 0.95, 0.99, 1), results.pop()))
    assert qs[0] == -40.0 and qs[1] == exact[-1]  # clamped to the exact extremes
    for q in (0.01, 0.5, 0.95, 0.99):
        rank_value = exact[int(q * (len(exact) - 1))]
        assert abs(qs[q] - rank_value) <= RELATIVE_ACCURACY * abs(rank_value) + 1e-9, q


def test_empty_quantile_is_none_and_merge_leaves_inputs_alone():
    assert QuantileSketch().quantile(0.5) is None
    a, b = QuantileSketch(), QuantileSketch()
    a.add(1.0)
    b.add(100.0)
    both = merged([a, b])
    assert (a.count, b.count, both.count) == (1, 1, 2)
    assert both.quantile(1) == 100.0
