"""Reading benchmark outputs back and comparing them.

Counts, keys, ids and texts must be equal exactly. Float results (sums,
means, standard deviations, z-scores) are compared exactly between
hybridflow's two paths; against idiomatic Beam and DuckDB, which add floats
in an unspecified order (not exactly rounded), within 1e-9 relative -- the
only tolerance used.

Both sides are Arrow tables sorted by their scalar non-float columns and
compared column by column (vectorised: 5M-row outputs compare in seconds).
"""

from __future__ import annotations

import glob

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REL_TOL = 1e-9
ABS_TOL = 1e-12


def _normalise(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    if pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    if pa.types.is_large_list(col.type):
        return col.cast(pa.list_(col.type.value_type))
    if pa.types.is_integer(col.type):
        return col.cast(pa.int64())
    if pa.types.is_floating(col.type):
        return col.cast(pa.float64())
    return col


def read_rows(pattern: str, columns: list[str]) -> pa.Table:
    """The Parquet files matching ``pattern`` as one table of ``columns``
    (timestamps as epoch micros), sorted by its scalar non-float columns."""
    files = sorted(glob.glob(pattern))
    if not files:
        return pa.table({c: pa.array([], pa.null()) for c in columns})
    tables = [pq.read_table(f, columns=columns) for f in files]
    tables = [pa.table([_normalise(t.column(c)) for c in columns], names=columns) for t in tables]
    table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    keys = [c for c in columns if not (pa.types.is_floating(table.column(c).type)
                                       or pa.types.is_list(table.column(c).type)
                                       or pa.types.is_null(table.column(c).type))]
    if keys and table.num_rows:
        table = table.sort_by([(c, "ascending") for c in keys])
    return table


def _floats_close(a: pa.ChunkedArray, b: pa.ChunkedArray, exact: bool) -> np.ndarray:
    """Per-row bool: equal nullness and (exactly or within tolerance) equal values."""
    an, bn = a.is_null().to_numpy(zero_copy_only=False), b.is_null().to_numpy(zero_copy_only=False)
    av = pc.fill_null(a, 0.0).to_numpy(zero_copy_only=False)
    bv = pc.fill_null(b, 0.0).to_numpy(zero_copy_only=False)
    same = av == bv if exact else np.isclose(av, bv, rtol=REL_TOL, atol=ABS_TOL)
    return (an == bn) & (an | same)


def _column_equal(a: pa.ChunkedArray, b: pa.ChunkedArray, exact: bool) -> np.ndarray | None:
    """Per-row bool for one column, or None when the whole column matches exactly."""
    if a.type != b.type and not (pa.types.is_null(a.type) or pa.types.is_null(b.type)):
        if pa.types.is_floating(a.type) or pa.types.is_floating(b.type):
            a, b = a.cast(pa.float64()), b.cast(pa.float64())
    if pa.types.is_floating(a.type):
        return _floats_close(a, b, exact)
    if a.equals(b):
        return None
    if pa.types.is_list(a.type) and pa.types.is_floating(a.type.value_type):
        return np.array([x == y or (x is not None and y is not None and len(x) == len(y) and bool(
            np.allclose(x, y, rtol=REL_TOL, atol=ABS_TOL))) for x, y in zip(a.to_pylist(), b.to_pylist())])
    if pa.types.is_list(a.type) or a.type != b.type:
        return np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist())])
    eq = pc.equal(a, b)
    both_null = pc.and_(a.is_null(), b.is_null())
    return pc.or_(pc.fill_null(eq, False), both_null).to_numpy(zero_copy_only=False)


def compare(a: pa.Table, b: pa.Table, exact: bool = False) -> tuple[bool, str]:
    """(equal, explanation) for two tables from :func:`read_rows`."""
    if a.num_rows != b.num_rows:
        return False, f"{a.num_rows} rows vs {b.num_rows}"
    if a.column_names != b.column_names:
        return False, f"columns {a.column_names} vs {b.column_names}"
    bad = np.zeros(a.num_rows, dtype=bool)
    for name in a.column_names:
        ok = _column_equal(a.column(name), b.column(name), exact)
        if ok is not None:
            bad |= ~ok
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return False, (f"{int(bad.sum())} rows differ, first at row {i}: "
                       f"{a.slice(i, 1).to_pylist()[0]} vs {b.slice(i, 1).to_pylist()[0]}")
    return True, f"{a.num_rows} rows equal" + (" (exactly)" if exact else f" (floats within {REL_TOL:g} relative)")
