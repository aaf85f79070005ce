"""bench.compare: the equality check that decides whether a benchmark timing counts."""

import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.compare import compare, read_rows

COLUMNS = ["card_id", "window_start", "total", "countries"]
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def write(path, rows, large=False):
    string = pa.large_string() if large else pa.string()
    schema = pa.schema([("card_id", string), ("window_start", pa.timestamp("ms", tz="UTC")),
                        ("total", pa.float64()), ("countries", pa.list_(string))])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def row(card, minute, total, countries=("DE",)):
    return {"card_id": card, "window_start": T0 + datetime.timedelta(minutes=minute), "total": total,
            "countries": list(countries)}


@pytest.fixture
def reference(tmp_path):
    (tmp_path / "a").mkdir()
    write(tmp_path / "a" / "out-0.parquet", [row("c1", 0, 10.5), row("c2", 1, None)])
    write(tmp_path / "a" / "out-1.parquet", [row("c1", 1, 0.1 + 0.2, ("DE", "FR"))])
    return read_rows(str(tmp_path / "a" / "out*.parquet"), COLUMNS)


def other(tmp_path, rows, large=False):
    (tmp_path / "b").mkdir(exist_ok=True)
    write(tmp_path / "b" / "out.parquet", rows, large=large)
    return read_rows(str(tmp_path / "b" / "out*.parquet"), COLUMNS)


def test_equal_in_any_file_order_and_type_width(tmp_path, reference):
    b = other(tmp_path, [row("c1", 1, 0.3, ("DE", "FR")), row("c2", 1, None), row("c1", 0, 10.5)], large=True)
    ok, why = compare(reference, b)
    assert ok, why
    assert why == "3 rows equal (floats within 1e-09 relative)"
    # 0.1 + 0.2 != 0.3 exactly
    assert not compare(reference, b, exact=True)[0]


@pytest.mark.parametrize("changed, expect", [
    (row("c1", 1, 0.3 * (1 + 1e-6), ("DE", "FR")), "1 rows differ, first at row 1"),
    (row("c1", 1, 0.3, ("FR", "DE")), "1 rows differ, first at row 1"),
    (row("c1", 1, None, ("DE", "FR")), "1 rows differ, first at row 1"),
    (row("c3", 1, 0.3, ("DE", "FR")), "2 rows differ, first at row 1"),
])
def test_a_difference_is_found_and_named(tmp_path, reference, changed, expect):
    b = other(tmp_path, [row("c1", 0, 10.5), row("c2", 1, None), changed])
    ok, why = compare(reference, b)
    assert not ok
    assert why.startswith(expect), why


def test_row_counts_differ(tmp_path, reference):
    ok, why = compare(reference, other(tmp_path, [row("c1", 0, 10.5)]))
    assert (ok, why) == (False, "3 rows vs 1")


def test_nan_is_never_equal(tmp_path, reference):
    # as math.isclose: a NaN in an output is a difference, even against a NaN
    nan = float("nan")
    a = other(tmp_path, [row("c1", 0, 10.5), row("c2", 1, nan), row("c1", 1, 0.3, ("DE", "FR"))])
    assert not compare(a, a)[0]
