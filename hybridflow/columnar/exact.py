"""Exact, vectorized sums of floats per group (the columnar form of the
integer accumulation in :mod:`hybridflow.transforms.aggregations`).

Each group's values are split into *limbs* with the error-free extraction of
Rump, Ogita and Oishi ("Accurate floating-point summation", ExtractVector):
with ``sigma = 2**(M + E)`` (``2**E > max|x|``, ``2**M >= n + 2``),
``q = (sigma + x) - sigma`` and ``r = x - q`` are exact, and the ``q`` of a
group add up without any rounding error in any order (numpy's ``bincount``
does the adding). Repeating on the remainders until they are all zero gives a
few floats per group whose *exact* sum is the exact sum of the group.
From them the correctly rounded sum is one addition when there are at most
two limbs, else ``math.fsum``; means and standard deviations go through the
per-element :class:`~hybridflow.transforms.aggregations.Accumulator`'s own
``extract`` on exact integers built from the limbs, so every result is the
bit pattern the per-element path gives.

Values the extraction cannot treat safely (beyond ``2**±400`` in magnitude,
non-finite) mark their group for the exact integer path in Python.
"""

from __future__ import annotations

import math

__all__ = ["group_limbs", "square_terms", "rounded_sums", "exact_integers", "SAFE"]

SAFE = (2.0**-400, 2.0**400)


def _group_max(values, gid, ngroups):
    import numpy as np

    out = np.zeros(ngroups, dtype=np.float64)
    np.maximum.at(out, gid, values)
    return out


def group_limbs(values, gid, ngroups, counts=None):
    """(list of per-group limb arrays, unsafe-group mask) for float ``values``
    grouped by integer ``gid`` (0..ngroups-1)."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    gid = np.asarray(gid, dtype=np.int64)
    if counts is None:
        counts = np.bincount(gid, minlength=ngroups)
    magnitude = np.abs(x)
    bad_value = ~np.isfinite(x) | ((magnitude != 0) & ((magnitude < SAFE[0]) | (magnitude > SAFE[1])))
    unsafe = np.zeros(ngroups, dtype=bool)
    if bad_value.any():
        unsafe[gid[bad_value]] = True
        x = np.where(unsafe[gid], 0.0, x)
    m = np.ceil(np.log2(counts.astype(np.float64) + 2)).astype(np.int64)
    limbs = []
    while True:
        amax = _group_max(np.abs(x), gid, ngroups)
        if not amax.any():
            break
        _, exponent = np.frexp(amax)  # amax < 2**exponent
        sigma = np.where(amax > 0, np.ldexp(1.0, exponent + m), 0.0)
        s = sigma[gid]
        q = (s + x) - s
        x = x - q
        limbs.append(np.bincount(gid, weights=q, minlength=ngroups))
    return limbs, unsafe


def square_terms(values):
    """Three float arrays whose exact sum is ``values**2`` element-wise
    (Veltkamp split: each term is an exact product of 26-bit halves)."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    c = 134217729.0 * x  # 2**27 + 1
    hi = c - (c - x)
    lo = x - hi
    return hi * hi, 2.0 * hi * lo, lo * lo


def rounded_sums(limbs, ngroups):
    """The correctly rounded sum of each group's limbs (float array)."""
    import numpy as np

    if not limbs:
        return np.zeros(ngroups, dtype=np.float64)
    if len(limbs) == 1:
        return limbs[0] + 0.0
    total = limbs[0] + limbs[1]
    if len(limbs) > 2:
        rest = np.zeros(ngroups, dtype=bool)
        for extra in limbs[2:]:
            rest |= extra != 0
        for g in np.flatnonzero(rest):
            total[g] = math.fsum(float(limb[g]) for limb in limbs)
    return total


def exact_integers(limbs, g) -> int:
    """Group ``g``'s exact sum as an integer multiple of 2**-1074."""
    from hybridflow.transforms.aggregations import _exact

    return sum(_exact(float(limb[g])) for limb in limbs)


def exactly_representable(limbs, ngroups):
    """Per group: whether the exact sum of the limbs is a float (no rounding)."""
    import numpy as np

    if len(limbs) <= 1:  # no limbs: every group is empty or unsafe
        return np.ones(len(limbs[0]) if limbs else ngroups, dtype=bool)
    a, b = limbs[0], limbs[1]
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # TwoSum error
    ok = err == 0
    for extra in limbs[2:]:
        ok &= extra == 0
    return ok
