"""Benchmark (a), DuckDB: count and sum of amount per card in 60 s fixed
windows, one SQL statement over the same files, with the same validation as
hybridflow's Transaction (see valid_transactions).

    python -m bench.baselines.aggregate_duckdb --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import os

import duckdb

from bench.baselines.transactions import arguments

TEXT = ("txn_id", "card_id", "customer_id", "merchant_id", "category", "currency", "country")


def source(path: str) -> str:
    if path.endswith(".parquet"):
        return f"read_parquet('{path}')"
    columns = {name: "VARCHAR" for name in (*TEXT, "amount", "event_time")}
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    return f"read_json('{path}', format='newline_delimited', ignore_errors=true, columns={spec})"


def valid_transactions(path: str) -> str:
    """SELECT of the valid records, typed; event time as epoch microseconds ``ts``."""
    return f"""
    SELECT * FROM (
      SELECT {', '.join(f'CAST({c} AS VARCHAR) AS {c}' for c in TEXT)},
             TRY_CAST(amount AS DOUBLE) AS amount,
             epoch_us(TRY_CAST(event_time AS TIMESTAMPTZ)) AS ts
      FROM {source(path)}
    )
    WHERE {' AND '.join(f'{c} IS NOT NULL' for c in TEXT)}
      AND amount IS NOT NULL AND isfinite(amount) AND amount BETWEEN 0 AND 1000000
      AND ts IS NOT NULL
      AND regexp_full_match(txn_id, '\\S{{1,128}}') AND regexp_full_match(card_id, '\\S{{1,64}}')
      AND regexp_full_match(currency, '[A-Z]{{3}}') AND regexp_full_match(country, '[A-Z]{{2}}')
    """


def main(argv=None):
    args, _ = arguments(argv, beam_flags=False)
    os.makedirs(args.output, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"""
    COPY (
      SELECT card_id, ts - ts % 60000000 AS window_start, count(*) AS n, sum(amount) AS total
      FROM ({valid_transactions(args.input)})
      GROUP BY ALL
    ) TO '{args.output}/aggregates.parquet' (FORMAT parquet)
    """)


if __name__ == "__main__":
    main()
