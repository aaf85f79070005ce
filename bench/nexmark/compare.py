"""The compared columns of each Nexmark query's output, read the same way from
every implementation's files (Parquet or JSON lines): times as epoch ms, floats
rounded to 9 significant digits (DuckDB's avg and Beam's mean add in no fixed
order; hybridflow's mean is exactly rounded), rows sorted."""

from __future__ import annotations

import datetime
import glob

#: query -> the columns compared (the names every implementation writes)
COLUMNS = {
    0: ["auction", "bidder", "price", "dateTime"],
    1: ["auction", "bidder", "price", "dateTime"],
    2: ["auction", "price"],
    3: ["name", "city", "state", "auction_id"],
    4: ["category", "price"],
    5: ["window_start", "auction", "num"],
    7: ["window_start", "auction", "bidder", "price", "dateTime"],
    8: ["window_start", "id", "name", "reserve"],
}


def _plain(value):
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def rows(directory: str, query: int) -> list[tuple]:
    """The sorted rows of ``directory/result*`` (Parquet or JSON lines), the compared columns only."""
    import duckdb

    files = sorted(glob.glob(f"{directory}/result*"))
    if not files:
        raise FileNotFoundError(f"no result files in {directory}")
    columns = ", ".join(f'"{c}"' for c in COLUMNS[query])
    if files[0].endswith(".parquet"):
        source = f"read_parquet({files!r})"
    else:
        if all(not open(f).read(1) for f in files):
            return []
        source = f"read_json({files!r}, format='newline_delimited')"
    found = duckdb.sql(f"SELECT {columns} FROM {source}").fetchall()
    return sorted(tuple(_plain(v) for v in row) for row in found)


def difference(reference: list[tuple], other: list[tuple]) -> str:
    """Empty if equal, else how they differ (counts and a few rows of each side)."""
    if reference == other:
        return ""
    from collections import Counter

    a, b = Counter(reference), Counter(other)
    only_a, only_b = list((a - b).elements()), list((b - a).elements())
    return (f"{len(reference)} vs {len(other)} rows; {len(only_a)} only in the reference (e.g. {only_a[:2]}), "
            f"{len(only_b)} only in the other (e.g. {only_b[:2]})")
