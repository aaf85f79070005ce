"""Nexmark Q0-Q5, Q7, Q8 in DuckDB SQL, on the same JSON-lines files.

Windows as in Beam's launcher: fixed 10 s (Q7, Q8), sliding 10 s every 5 s
(Q5: a bid at t falls in the windows starting at floor(t / 5 s) * 5 s and
5 s before). Q4 as hybridflow's: the average winning price per category over
the whole input.

    python -m bench.nexmark.duckdb_queries --query 5 --data bench/data/nexmark/b1000000 --output /tmp/q5
"""

from __future__ import annotations

import argparse
import os

BIDS = "read_json('{data}/bids.jsonl', columns={{auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', dateTime: 'BIGINT', extra: 'VARCHAR'}}, format='newline_delimited')"
AUCTIONS = ("read_json('{data}/auctions.jsonl', columns={{id: 'BIGINT', itemName: 'VARCHAR', description: 'VARCHAR', "
            "initialBid: 'BIGINT', reserve: 'BIGINT', dateTime: 'BIGINT', expires: 'BIGINT', seller: 'BIGINT', "
            "category: 'BIGINT', extra: 'VARCHAR'}}, format='newline_delimited')")
PERSONS = ("read_json('{data}/persons.jsonl', columns={{id: 'BIGINT', name: 'VARCHAR', emailAddress: 'VARCHAR', "
           "creditCard: 'VARCHAR', city: 'VARCHAR', state: 'VARCHAR', dateTime: 'BIGINT', extra: 'VARCHAR'}}, "
           "format='newline_delimited')")

SQL = {
    0: "SELECT auction, bidder, price, dateTime FROM bids",
    1: "SELECT auction, bidder, price * 0.89::DOUBLE AS price, dateTime FROM bids",
    2: "SELECT auction, price FROM bids WHERE auction % 123 = 0",
    3: """SELECT p.name, p.city, p.state, a.id AS auction_id
          FROM auctions a JOIN persons p ON a.seller = p.id
          WHERE a.category = 10 AND p.state IN ('OR', 'ID', 'CA')""",
    4: """WITH winners AS (
            SELECT a.id, a.category, max(b.price) AS final
            FROM bids b JOIN auctions a ON b.auction = a.id
            WHERE b.price >= a.reserve AND b.dateTime < a.expires
            GROUP BY a.id, a.category)
          SELECT category, avg(final) AS price FROM winners GROUP BY category""",
    5: """WITH counts AS (
            SELECT w.window_start, auction, count(*) AS num
            FROM bids, (SELECT unnest([dateTime // 5000 * 5000, dateTime // 5000 * 5000 - 5000]) AS window_start) w
            GROUP BY ALL)
          SELECT window_start, auction, num FROM counts
          QUALIFY num = max(num) OVER (PARTITION BY window_start)""",
    7: """SELECT dateTime // 10000 * 10000 AS window_start, auction, bidder, price, dateTime FROM bids
          QUALIFY price = max(price) OVER (PARTITION BY dateTime // 10000)""",
    8: """SELECT a.dateTime // 10000 * 10000 AS window_start, p.id, p.name, a.reserve
          FROM auctions a JOIN persons p
            ON a.seller = p.id AND a.dateTime // 10000 = p.dateTime // 10000""",
}


def main(argv=None) -> None:
    import duckdb

    parser = argparse.ArgumentParser()
    parser.add_argument("--query", type=int, required=True, choices=sorted(SQL))
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    con = duckdb.connect()
    with_clause = (f"WITH bids AS (SELECT * FROM {BIDS.format(data=args.data)}), "
                   f"auctions AS (SELECT * FROM {AUCTIONS.format(data=args.data)}), "
                   f"persons AS (SELECT * FROM {PERSONS.format(data=args.data)}) ")
    # CTEs a query does not use cost nothing: DuckDB reads only the files a query names
    sql = SQL[args.query].strip()
    sql = f", {sql[4:]}" if sql.startswith("WITH") else f" {sql}"
    con.execute(f"COPY ({with_clause}{sql}) TO '{args.output}/result.parquet' (FORMAT PARQUET)")


if __name__ == "__main__":
    main()
