"""Mergeable, deterministic sketches behind the approximate aggregations.

Both sketches give the *same* answer for the same multiset of values whatever
the order of the values and however partial sketches were merged: their state
is a pure function of the set (distinct) or multiset (quantiles) of inputs.
That is what keeps :class:`~hybridflow.transforms.WindowedAggregate`'s batch
and streaming results bit-identical with approximate aggregations too.

:class:`DistinctSketch` (``approx_distinct``) is HyperLogLog with a sparse
start, as in HyperLogLog++ (Heule, Nunkesser, Hall: "HyperLogLog in Practice",
EDBT 2013; Flajolet et al.: "HyperLogLog: the analysis of a near-optimal
cardinality estimation algorithm", AofA 2007). Values are hashed with BLAKE2b
(64 bits, from ``hashlib``: stable across processes, unlike ``hash()``). Up to
:data:`SPARSE_LIMIT` distinct hashes are kept as a set, so small counts are
exact; beyond that 2**12 registers give a standard error of about 1.6 %.
Apache DataSketches' HLL was considered and not used: its single-stream (HIP)
estimate depends on the insertion order, so two runs over the same data in a
different order give different estimates.

:class:`QuantileSketch` (``percentile``) is DDSketch (Masson, Rim, Lee: "DDSketch:
a fast and fully-mergeable quantile sketch with relative-error guarantees",
VLDB 2019), from Datadog's ``ddsketch`` package, with the cubically
interpolated key mapping: it uses only IEEE arithmetic (no ``log``), so
bucket boundaries are the same on every platform. Every returned quantile is
within 1 % (relative) of the value at that rank, clamped to the exact minimum
and maximum; quantiles 0 and 1 are the exact minimum and maximum.

Which rank is "the" q-quantile of n values is a definition (:data:`QUANTILE_METHODS`):
``lower`` (the default, DDSketch's own) takes the value at 0-based rank
floor(q·(n−1)); ``nearest`` the nearest rank, 1-based ceil(q·n) (SQL's
``percentile_disc``, DuckDB's ``quantile_disc``); ``linear`` interpolates
between the values at ranks floor and ceil of q·(n−1) (DuckDB's
``quantile_cont``, NumPy's default). docs/transforms.md has a worked example.
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any, Iterable, Optional

from apache_beam.utils.timestamp import Timestamp

__all__ = [
    "DistinctSketch",
    "QuantileSketch",
    "stable_hash",
    "canonical",
    "PRECISION",
    "SPARSE_LIMIT",
    "RELATIVE_ACCURACY",
    "QUANTILE_METHODS",
]

PRECISION = 12  # 2**12 registers: standard error 1.04 / sqrt(4096) ~ 1.6 %
SPARSE_LIMIT = 1 << (PRECISION - 2)  # exact up to 1024 distinct values
RELATIVE_ACCURACY = 0.01
#: Rank definitions of :meth:`QuantileSketch.quantile`; the first is the default.
QUANTILE_METHODS = ("lower", "nearest", "linear")

_M = 1 << PRECISION
_ALPHA = 0.7213 / (1 + 1.079 / _M)
_REST_BITS = 64 - PRECISION


def canonical(value: Any) -> bytes:
    """Bytes that identify a value: equal values (1 == 1.0 == True) give equal bytes."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, float):
        return b"f" + struct.pack(">d", value)
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, Timestamp):
        return b"t" + str(value.micros).encode()
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(struct.pack(">I", len(c)) + c for c in map(canonical, value))
    return b"r" + repr(value).encode("utf-8", "backslashreplace")


def stable_hash(value: Any) -> int:
    """A 64-bit hash of ``value`` that is the same in every process and run."""
    return int.from_bytes(hashlib.blake2b(canonical(value), digest_size=8).digest(), "big")


class DistinctSketch:
    """HyperLogLog++-style distinct counter: exact below :data:`SPARSE_LIMIT`."""

    __slots__ = ("sparse", "registers")

    def __init__(self):
        self.sparse: Optional[set] = set()
        self.registers: Optional[bytearray] = None

    def add(self, value: Any) -> None:
        h = stable_hash(value)
        if self.sparse is not None:
            self.sparse.add(h)
            if len(self.sparse) > SPARSE_LIMIT:
                self._densify()
        else:
            self._set(h)

    def _set(self, h: int) -> None:
        index = h >> _REST_BITS
        rest = h & ((1 << _REST_BITS) - 1)
        rank = _REST_BITS - rest.bit_length() + 1  # position of the leftmost 1-bit
        if rank > self.registers[index]:
            self.registers[index] = rank

    def _densify(self) -> None:
        self.registers = bytearray(_M)
        for h in self.sparse:
            self._set(h)
        self.sparse = None

    def merge(self, other: "DistinctSketch") -> "DistinctSketch":
        """Adds ``other`` into this sketch (``other`` is unchanged)."""
        if other.sparse is not None:
            if self.sparse is not None:
                self.sparse |= other.sparse
                if len(self.sparse) > SPARSE_LIMIT:
                    self._densify()
            else:
                for h in other.sparse:
                    self._set(h)
        else:
            if self.sparse is not None:
                self._densify()
            self.registers = bytearray(map(max, self.registers, other.registers))
        return self

    def copy(self) -> "DistinctSketch":
        result = DistinctSketch()
        result.sparse = set(self.sparse) if self.sparse is not None else None
        result.registers = bytearray(self.registers) if self.registers is not None else None
        return result

    def estimate(self) -> int:
        if self.sparse is not None:
            return len(self.sparse)
        # sum of 2**-register, exactly, as an integer scaled by 2**64
        total = sum(1 << (64 - r) for r in self.registers)
        raw = _ALPHA * _M * _M * (1 << 64) / total
        zeros = self.registers.count(0)
        if raw <= 2.5 * _M and zeros:
            return round(_M * math.log(_M / zeros))  # linear counting, small range
        return round(raw)  # 64-bit hashes: no large-range correction needed

    def __getstate__(self):
        return (sorted(self.sparse) if self.sparse is not None else None, self.registers)

    def __setstate__(self, state):
        sparse, registers = state
        self.sparse = set(sparse) if sparse is not None else None
        self.registers = registers

    def __eq__(self, other):
        return isinstance(other, DistinctSketch) and self.__getstate__() == other.__getstate__()

    def __repr__(self):
        mode = f"sparse, {len(self.sparse)}" if self.sparse is not None else "dense"
        return f"DistinctSketch({mode}, estimate={self.estimate()})"


def _new_ddsketch():
    from ddsketch.ddsketch import BaseDDSketch
    from ddsketch.mapping import CubicallyInterpolatedMapping
    from ddsketch.store import DenseStore

    return BaseDDSketch(
        mapping=CubicallyInterpolatedMapping(RELATIVE_ACCURACY),
        store=DenseStore(),
        negative_store=DenseStore(),
        zero_count=0.0,
    )


class QuantileSketch:
    """DDSketch quantiles with a 1 % relative-error guarantee, clamped to the exact min/max."""

    __slots__ = ("_sketch", "_min", "_max")

    def __init__(self):
        self._sketch = _new_ddsketch()
        self._min: Optional[float] = None
        self._max: Optional[float] = None

    def add(self, value: float) -> None:
        value = float(value)
        self._sketch.add(value)
        self._min = value if self._min is None or value < self._min else self._min
        self._max = value if self._max is None or value > self._max else self._max

    def merge(self, other: "QuantileSketch") -> "QuantileSketch":
        """Adds ``other`` into this sketch (``other`` is unchanged)."""
        if other._min is None:
            return self
        self._sketch.merge(other._sketch)  # bin counts are integer-valued floats: exact
        self._min = other._min if self._min is None or other._min < self._min else self._min
        self._max = other._max if self._max is None or other._max > self._max else self._max
        return self

    def copy(self) -> "QuantileSketch":
        return QuantileSketch().merge(self)

    @property
    def count(self) -> int:
        return int(self._sketch.count)

    def quantile(self, q: float, method: str = "lower") -> Optional[float]:
        """The value at quantile ``q`` (0..1) by rank definition ``method``
        (one of :data:`QUANTILE_METHODS`), or None when empty."""
        if self._min is None:
            return None
        if q <= 0:
            return self._min
        if q >= 1:
            return self._max
        if method == "lower":
            return self._clamped(self._sketch.get_quantile_value(q))
        n = self.count
        if method == "nearest":
            return self._at_rank(max(math.ceil(q * n) - 1, 0), n)
        if method == "linear":
            h = q * (n - 1)
            below = math.floor(h)
            low = self._at_rank(below, n)
            return low if h == below else low + (h - below) * (self._at_rank(below + 1, n) - low)
        raise ValueError(f"quantile method {method!r}: use one of {', '.join(QUANTILE_METHODS)}")

    def _at_rank(self, rank: int, n: int) -> float:
        """The value at 0-based ``rank`` of ``n``: DDSketch reads rank floor(q·(n−1)),
        so ask for the middle of [rank, rank + 1); the top rank is the exact maximum."""
        if rank >= n - 1:
            return self._max  # type: ignore[return-value]
        return self._clamped(self._sketch.get_quantile_value((rank + 0.5) / (n - 1)))

    def _clamped(self, value: float) -> float:
        return float(min(max(value, self._min), self._max))  # type: ignore[type-var]

    def __getstate__(self):
        return (self._sketch, self._min, self._max)

    def __setstate__(self, state):
        self._sketch, self._min, self._max = state

    def __repr__(self):
        return f"QuantileSketch(count={self.count}, min={self._min}, max={self._max})"


def merged(sketches: Iterable[Any]):
    """A fresh sketch holding all of ``sketches`` (none of them is changed)."""
    sketches = iter(sketches)
    result = next(sketches).copy()
    for other in sketches:
        result.merge(other)
    return result
