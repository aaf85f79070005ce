"""Exact vectorized sums: limb extraction vs exact integer arithmetic, on hard cases."""

import math
import random
from fractions import Fraction

import numpy as np

from hybridflow.columnar.exact import exact_integers, exactly_representable, group_limbs, rounded_sums, square_terms
from hybridflow.transforms.aggregations import Accumulator, Aggregation


def _values(rng, n):
    kinds = [
        lambda: round(rng.uniform(0, 1000), 2),
        lambda: rng.uniform(-1, 1) * 2.0 ** rng.randint(-60, 60),
        lambda: rng.choice([0.1, 0.2, 0.3, 1e16, -1e16, 1.0, -0.0, 0.0, 2.0**53, 1 + 2.0**-52]),
        lambda: float(rng.randint(-10**6, 10**6)),
    ]
    return [rng.choice(kinds)() for _ in range(n)]


def test_limb_sums_are_the_exact_sums_correctly_rounded():
    rng = random.Random(7)
    values = _values(rng, 5000)
    gid = np.array([rng.randrange(300) for _ in values])
    limbs, unsafe = group_limbs(np.array(values), gid, 300)
    sums = rounded_sums(limbs, 300)
    assert not unsafe.any()
    for g in range(300):
        group = [v for v, k in zip(values, gid) if k == g]
        exact = sum(Fraction(v) for v in group)
        assert sum(Fraction(float(limb[g])) for limb in limbs) == exact
        expected = float(exact) + 0.0  # Fraction -> float rounds correctly (half to even)
        assert sums[g] == expected and math.copysign(1, sums[g]) == math.copysign(1, expected)
        assert exactly_representable(limbs, 300)[g] == (Fraction(float(exact)) == exact)


def test_halfway_cases_round_to_even():
    # 1 + 2**-53 is halfway between 1 and the next float: rounds to 1; 1 + 3 * 2**-53 rounds up
    values = np.array([1.0, 2.0**-53, 1.0, 2.0**-53, 2.0**-53, 2.0**-53])
    gid = np.array([0, 0, 1, 1, 1, 1])
    limbs, _ = group_limbs(values, gid, 2)
    sums = rounded_sums(limbs, 2)
    assert sums[0] == 1.0
    assert sums[1] == float(Fraction(1) + Fraction(3, 2**53)) == 1.0 + 2.0**-51


def test_square_terms_are_exact_and_moments_match_the_accumulator():
    rng = random.Random(3)
    values = _values(rng, 400)
    hh, hl, ll = square_terms(np.array(values))
    for v, a, b, c in zip(values, hh, hl, ll):
        assert Fraction(float(a)) + Fraction(float(b)) + Fraction(float(c)) == Fraction(v) ** 2
    acc = Accumulator([Aggregation("sd", "stddev", "x"), Aggregation("m", "mean", "x")])
    gid = np.zeros(len(values), dtype=np.int64)
    limbs, _ = group_limbs(np.array(values), gid, 1)
    sq, _ = group_limbs(np.concatenate([hh, hl, ll]), np.zeros(3 * len(values), dtype=np.int64), 1)
    slot = [len(values), exact_integers(limbs, 0), exact_integers(sq, 0) << 1074]
    per_element = acc.create()

    class R:
        pass

    for v in values:
        r = R()
        r.x = v
        acc.add(per_element, r)
    assert acc.extract([slot, [len(values), exact_integers(limbs, 0)]]) == acc.extract(per_element)


def test_out_of_range_values_are_flagged_for_the_python_path():
    values = np.array([1e300, 1.0, 5e-324, 2.0])
    limbs, unsafe = group_limbs(values, np.array([0, 0, 1, 2]), 3)
    assert unsafe.tolist() == [True, True, False]
    assert rounded_sums(limbs, 3)[2] == 2.0


def test_groups_of_only_huge_or_tiny_values_take_the_exact_path():
    # every value beyond 2**+-400: no limbs at all; the mean is the accumulator's, not 0
    limbs, unsafe = group_limbs(np.array([1e308, 1e308, 1e-300]), np.array([0, 0, 0]), 1)
    assert limbs == [] and unsafe.tolist() == [True]
    assert exactly_representable(limbs, 1).tolist() == [True]
