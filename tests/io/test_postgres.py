"""postgresql:// partitioned reads against a real PostgreSQL: exact round trip, ranges and NULLs,
identifiers validated, clear errors, bad rows to dead letters."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, Transaction
from hybridflow.io.postgres import ReadFromPostgres, plan_ranges
from hybridflow.testing import Collect, batch_pipeline, collected, transactions
from tests.io.edge_records import EDGES, Edge

PARSED = [r._replace(text=r.text or None) for r in EDGES]

EDGE_TABLE = """CREATE TABLE {schema}.edges (
    id text PRIMARY KEY, text text, count bigint NOT NULL, amount double precision, flag boolean NOT NULL,
    tags text[] NOT NULL, scores double precision[] NOT NULL, event_time timestamptz NOT NULL)"""


@pytest.fixture
def edges_table(postgres_server, postgres_schema):
    with postgres_server.connect() as conn:
        conn.execute(EDGE_TABLE.format(schema=postgres_schema))
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {postgres_schema}.edges VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*e[:7], e.event_time.to_utc_datetime(has_tz=True)) for e in EDGES],
            )
    return f"{postgres_schema}.edges"


def _read(tmp_path, uri, schema=Edge):
    with batch_pipeline() as p:
        parsed = p | ReadFrom(uri) | ParseRecords(schema, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    return sorted(collected(tmp_path / "records")), collected(tmp_path / "dead")


@pytest.mark.parametrize("column", ["count", "amount", "event_time", None])
def test_partitioned_read_round_trips_exactly(tmp_path, postgres_server, edges_table, column):
    # count spans the whole int64 range, amount has a NULL (its own range), event_time is a timestamptz
    query = f"table={edges_table}" + (f"&partition_column={column}&partitions=3" if column else "")
    records, dead = _read(tmp_path, f"{postgres_server.url}?{query}")
    assert records == sorted(PARSED) and dead == []


def test_ranges_cover_everything_once():
    assert plan_ranges(-(2**63), 2**63 - 1, 4)[-1] == (4611686018427387903, 2**63 - 1, True)
    assert plan_ranges(1, 3, 10) == [(1, 2, False), (2, 3, True)]
    assert plan_ranges(None, None, 4) == []  # an empty table: only the NULL range is read


def test_more_rows_than_ranges_are_all_read(tmp_path, postgres_server, postgres_schema):
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {postgres_schema}.big AS SELECT g AS id, g * 0.5 AS v FROM generate_series(1, 5000) g")
        conn.execute(f"INSERT INTO {postgres_schema}.big VALUES (NULL, 1.0)")
    with batch_pipeline() as p:
        rows = p | ReadFrom(f"{postgres_server.url}?table={postgres_schema}.big&partition_column=id&partitions=7")
        rows | beam.Map(lambda r: r["id"]) | Collect(tmp_path / "ids")
    ids = collected(tmp_path / "ids")
    assert len(ids) == 5001 and sorted(i for i in ids if i is not None) == list(range(1, 5001))


def test_bad_rows_reach_dead_letters(tmp_path, postgres_server, postgres_schema):
    txns = transactions([("c1", 10.0, 0), ("c2", 20.0, 1)])
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {postgres_schema}.txns (txn_id text, card_id text, customer_id text, merchant_id text, "
                     "category text, amount numeric(12,2), currency text, country text, event_time timestamptz)")
        rows = [(*t[:8], t.event_time.to_utc_datetime(has_tz=True)) for t in txns]
        rows.append(("t-bad", "c3", "cust", "m", "grocery", -5, "EUR", "FR", txns[0].event_time.to_utc_datetime(has_tz=True)))
        rows.append(("t-null", None, "cust", "m", "grocery", 1, "EUR", "FR", txns[0].event_time.to_utc_datetime(has_tz=True)))
        with conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {postgres_schema}.txns VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    records, dead = _read(tmp_path, f"{postgres_server.url}?table={postgres_schema}.txns&partition_column=event_time",
                          Transaction)
    assert records == sorted(txns)
    assert sorted(d.error_type for d in dead) == ["invalid_value", "missing_field"]


@pytest.mark.parametrize("query, message", [
    ("table=t;drop table x", "table='t;drop table x' is not a plain identifier"),
    ("table=a.b.c", "is not a plain identifier"),
    ("table=t&partition_column=id)--", "partition_column='id\\)--' is not a plain identifier"),
    ("table=t&partitions=0", "partitions=0 must be >= 1"),
    ("partition_column=id", r"add \?table=NAME"),
    ("table=t&split=id", "unknown parameter 'split'"),
])
def test_bad_uris_are_usage_errors(query, message):
    with pytest.raises(InvalidUriError, match=message):
        ReadFrom(f"postgresql://u@127.0.0.1:1/db?{query}")


def test_missing_table_column_and_unreachable_are_one_line_errors(postgres_server, edges_table):
    p = batch_pipeline()
    with pytest.raises(ConnectorError, match=r"\?table=public.nope: table public.nope does not exist"):
        _ = p | "A" >> ReadFrom(f"{postgres_server.url}?table=public.nope")
    with pytest.raises(ConnectorError, match=r'column "nope" does not exist; fix columns= or partition_column='):
        _ = p | "B" >> ReadFrom(f"{postgres_server.url}?table={edges_table}&partition_column=nope")
    with pytest.raises(ConnectorError, match=r"partition_column='text' must be numeric, date or timestamp"):
        _ = p | "C" >> ReadFrom(f"{postgres_server.url}?table={edges_table}&partition_column=text")
    from hybridflow.testing.services import free_port

    with pytest.raises(ConnectorError, match=r"^postgresql://u:\*\*\*@127.0.0.1:\d+/db\?table=t: cannot connect"):
        _ = p | "D" >> ReadFromPostgres(f"postgresql://u:secret@127.0.0.1:{free_port()}/db", "t")


PASSWORD = "pg-Secr3t-71c"


@pytest.fixture
def password_table(postgres_server, postgres_schema):
    """A table only the password role may read; returns its URL (no password) and table."""
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {postgres_schema}.t AS SELECT g AS id FROM generate_series(1, 50) g")
    return postgres_server.password_role(PASSWORD, postgres_schema), f"{postgres_schema}.t"


def test_password_by_environment_variable(tmp_path, password_table, monkeypatch):
    url, table = password_table
    monkeypatch.setenv("HF_TEST_PGPASSWORD", PASSWORD)
    with batch_pipeline() as p:
        rows = p | ReadFrom(f"{url}?table={table}&partition_column=id&partitions=3&password_env=HF_TEST_PGPASSWORD")
        rows | beam.Map(lambda r: r["id"]) | Collect(tmp_path / "ids")
    assert sorted(collected(tmp_path / "ids")) == list(range(1, 51))


def test_password_errors_name_the_reference_never_the_value(password_table, monkeypatch):
    url, table = password_table
    p = batch_pipeline()
    monkeypatch.delenv("HF_TEST_PGPASSWORD", raising=False)
    with pytest.raises(ConnectorError, match="password_env=HF_TEST_PGPASSWORD: the environment variable "
                                             "HF_TEST_PGPASSWORD is not set here"):
        _ = p | "A" >> ReadFrom(f"{url}?table={table}&password_env=HF_TEST_PGPASSWORD")
    monkeypatch.setenv("HF_TEST_PGPASSWORD", "wrong-" + PASSWORD)
    with pytest.raises(ConnectorError, match="password authentication failed") as err:
        _ = p | "B" >> ReadFrom(f"{url}?table={table}&password_env=HF_TEST_PGPASSWORD")
    assert PASSWORD not in str(err.value)
    inline = url.replace("@", f":wrong-{PASSWORD}@", 1)  # a password in the URL still works, and is never shown
    with pytest.raises(ConnectorError, match=r"hf_password_user:\*\*\*@127.0.0.1") as err:
        _ = p | "C" >> ReadFrom(f"{inline}?table={table}")
    assert PASSWORD not in str(err.value)
    with pytest.raises(InvalidUriError, match="password_env='1X'"):
        ReadFrom(f"{url}?table={table}&password_env=1X")
