"""Benchmark (b), DuckDB: the fraud batch scoring path as SQL over the same
files -- profiles, enrichment, z-score / new-country / velocity rules on
sliding 5 min / 1 min windows, one alert per rule, card and 10 minutes --
written to Parquet. Same parameters as ``hybridflow run fraud --mode batch``.

    python -m bench.baselines.fraud_duckdb --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import os

import duckdb

from bench.baselines.aggregate_duckdb import valid_transactions
from bench.baselines.transactions import arguments

VELOCITY, ZSCORE, MIN_HISTORY, SHARE, MIN_STDDEV = 10, 4.0, 5, 0.1, 1.0
COOLDOWN_US, SIZE_US, PERIOD_US = 600_000_000, 300_000_000, 60_000_000


def alert_id(rule: str, key: str, ts: str) -> str:
    return f"substr(sha1({rule} || '|' || {key} || '|' || CAST({ts} AS VARCHAR)), 1, 20)"


def main(argv=None):
    args, _ = arguments(argv, beam_flags=False)
    os.makedirs(args.output, exist_ok=True)
    out = args.output
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE txn AS {valid_transactions(args.input)}")
    con.execute(f"""
    CREATE TEMP TABLE profiles AS
    SELECT p.card_id, p.txn_count, p.amount_mean, p.amount_stddev,
           coalesce(u.usual, []::VARCHAR[]) AS usual_countries, p.last_seen
    FROM (SELECT card_id, count(*) AS txn_count, avg(amount) AS amount_mean,
                 coalesce(stddev_samp(amount), 0.0) AS amount_stddev, max(ts) AS last_seen
          FROM txn GROUP BY card_id) p
    LEFT JOIN (
      SELECT c.card_id, list(c.country ORDER BY c.country) AS usual
      FROM (SELECT card_id, country, count(*) AS k FROM txn GROUP BY ALL) c
      JOIN (SELECT card_id, count(*) AS n FROM txn GROUP BY card_id) t USING (card_id)
      WHERE c.k >= {SHARE} * t.n
      GROUP BY c.card_id
    ) u USING (card_id)
    """)
    con.execute(f"""
    CREATE TEMP TABLE windows AS
    SELECT card_id, start AS window_start, start + {SIZE_US} AS window_end, count(*) AS txn_count,
           sum(amount) AS total_amount, max(amount) AS max_amount, count(DISTINCT country) AS countries
    FROM (
      SELECT t.card_id, t.amount, t.country, t.ts - t.ts % {PERIOD_US} - k * {PERIOD_US} AS start, t.ts
      FROM txn t, range(0, {SIZE_US // PERIOD_US}) r(k)
    ) WHERE start > ts - {SIZE_US}
    GROUP BY ALL
    """)
    con.execute(f"""
    CREATE TEMP TABLE candidates AS
    SELECT 'amount_zscore' AS rule, t.card_id AS key, z AS value, {ZSCORE} AS threshold, t.ts AS event_time,
           NULL::BIGINT AS window_start, NULL::BIGINT AS window_end
    FROM (SELECT t.*, (t.amount - p.amount_mean) / greatest(p.amount_stddev, {MIN_STDDEV}) AS z, p.txn_count AS n
          FROM txn t JOIN profiles p USING (card_id)) t
    WHERE n >= {MIN_HISTORY} AND isfinite(z) AND z >= {ZSCORE}
    UNION ALL
    SELECT 'new_country', t.card_id, 1.0, 1.0, t.ts, NULL, NULL
    FROM txn t JOIN profiles p USING (card_id)
    WHERE p.txn_count >= {MIN_HISTORY} AND NOT list_contains(p.usual_countries, t.country)
    UNION ALL
    SELECT 'velocity', card_id, txn_count, {VELOCITY}, window_end, window_start, window_end
    FROM windows WHERE txn_count >= {VELOCITY}
    """)
    con.execute(f"""
    COPY (
      SELECT alert_id, rule, key, value, threshold, make_timestamptz(event_time) AS event_time,
             make_timestamptz(window_start) AS window_start, make_timestamptz(window_end) AS window_end
      FROM (
        SELECT *, {alert_id('rule', 'key', 'event_time')} AS alert_id,
               row_number() OVER (PARTITION BY rule, key, event_time // {COOLDOWN_US}
                                  ORDER BY event_time, {alert_id('rule', 'key', 'event_time')}) AS rn
        FROM candidates
      ) WHERE rn = 1
    ) TO '{out}/alerts.parquet' (FORMAT parquet)
    """)
    con.execute(f"""
    COPY (SELECT card_id, make_timestamptz(window_start) AS window_start, make_timestamptz(window_end) AS window_end,
                 txn_count, total_amount, max_amount, countries FROM windows)
    TO '{out}/aggregates.parquet' (FORMAT parquet)
    """)
    con.execute(f"""
    COPY (SELECT card_id, txn_count, amount_mean, amount_stddev, usual_countries,
                 make_timestamptz(last_seen) AS last_seen FROM profiles)
    TO '{out}/profiles.parquet' (FORMAT parquet)
    """)


if __name__ == "__main__":
    main()
