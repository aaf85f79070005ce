"""Reading benchmark outputs back and comparing them.

Counts, keys, ids and texts must be equal exactly. Float results (sums,
means, standard deviations, z-scores) are compared exactly between
hybridflow's two paths; against idiomatic Beam and DuckDB, which add floats
in an unspecified order (not exactly rounded), within 1e-9 relative -- the
only tolerance used.
"""

from __future__ import annotations

import glob
import math

import pyarrow as pa
import pyarrow.parquet as pq

REL_TOL = 1e-9


def read_rows(pattern: str, columns: list[str]) -> list[tuple]:
    """Rows of the Parquet files matching ``pattern`` (timestamps as epoch micros), sorted."""
    files = sorted(glob.glob(pattern))
    if not files:
        return []
    tables = []
    for f in files:
        t = pq.read_table(f, columns=columns)
        arrays = []
        for name in columns:
            col = t.column(name)
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            arrays.append(col)
        tables.append(pa.table(arrays, names=columns))
    table = pa.concat_tables(tables)
    rows = list(zip(*(table.column(c).to_pylist() for c in columns)))
    return sorted(rows, key=lambda r: tuple((x is None, tuple(x) if isinstance(x, list) else x) for x in r))


def _close(a, b, exact: bool) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if exact:
            return a == b
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, exact) for x, y in zip(a, b))
    return a == b


def compare(a: list[tuple], b: list[tuple], exact: bool = False) -> tuple[bool, str]:
    """(equal, explanation) for two sorted row lists."""
    if len(a) != len(b):
        return False, f"{len(a)} rows vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if len(x) != len(y) or not all(_close(p, q, exact) for p, q in zip(x, y)):
            return False, f"row {i} differs: {x} vs {y}"
    return True, f"{len(a)} rows equal" + (" (exactly)" if exact else f" (floats within {REL_TOL:g} relative)")
