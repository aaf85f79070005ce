"""Nexmark Q0-Q5, Q7, Q8 written with hybridflow's public API.

Each query is a function of the parsed inputs (columnar: Arrow tables, so
every step runs as ``pyarrow.compute`` kernels) returning the result rows.
Window sizes are those of Beam's launcher (10 s windows, 5 s period;
auction id skip 123). Q4 is simplified: the average winning price per
category over the whole input (one day-long window), not over sliding
windows of the auctions' closing times as Beam's is (see ``run.py``).

    python -m bench.nexmark.hybridflow_queries --query 5 --data bench/data/nexmark/b1000000 --output /tmp/q5
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow import Derive, Enrich, Filter, ParseRecords, Select, TopPerWindow, WindowedAggregate
from hybridflow.io import ReadFrom, WriteTo
from hybridflow.schemas import register


@register
class Person(NamedTuple):
    id: int
    name: str
    emailAddress: str
    creditCard: str
    city: str
    state: str
    dateTime: Timestamp
    extra: str


@register
class Auction(NamedTuple):
    id: int
    itemName: str
    description: str
    initialBid: int
    reserve: int
    dateTime: Timestamp
    expires: Timestamp
    seller: int
    category: int
    extra: str


@register
class Bid(NamedTuple):
    auction: int
    bidder: int
    price: int
    dateTime: Timestamp
    extra: str


def q0(bids, persons, auctions):
    return bids


def q1(bids, persons, auctions):
    return (bids | Derive(price="price * 0.89")).records


def q2(bids, persons, auctions):
    return ((bids | Filter("auction % 123 == 0")).records | Select("auction", "price", "dateTime")).records


def q3(bids, persons, auctions):
    sellers = (persons | "InStates" >> Filter("state in ('OR', 'ID', 'CA')")).records
    items = (auctions | "InCategory" >> Filter("category == 10")).records
    joined = (items | Enrich(sellers, key="seller", table_key="id", fields=["name", "city", "state"])).records
    found = (joined | "Joined" >> Filter("name is not null")).records
    return (found | Select("name", "city", "state", "dateTime", auction_id="id")).records


def q4(bids, persons, auctions):
    terms = ["category", "reserve", "expires"]
    priced = (bids | Enrich(auctions, key="auction", table_key="id", fields=terms)).records
    valid = (priced | Filter("price >= reserve and dateTime < expires")).records
    winners = (valid | TopPerWindow(by="price", key="auction", ties="first", window="fixed:1d")).rows
    return (winners | WindowedAggregate(key="category", window="fixed:1d", aggregations={"price": "mean(price)"})).aggregates


def q5(bids, persons, auctions):
    counts = bids | WindowedAggregate(key="auction", window="sliding:10s/5s", aggregations={"num": "count"})
    return (counts.aggregates | TopPerWindow(by="num")).rows


def q7(bids, persons, auctions):
    return (bids | TopPerWindow(by="price", window="fixed:10s")).rows


def q8(bids, persons, auctions):
    new_people = persons | WindowedAggregate(key=["id", "name"], window="fixed:10s", aggregations={"n": "count"})
    joined = (auctions | Enrich(new_people.aggregates, key="seller", table_key="id",
                                fields=["name", "window_start"], window="fixed:10s")).records
    found = (joined | Filter("name is not null")).records
    return (found | Select("window_start", "name", "reserve", "dateTime", id="seller")).records


QUERIES = {0: q0, 1: q1, 2: q2, 3: q3, 4: q4, 5: q5, 7: q7, 8: q8}
#: the inputs each query reads
INPUTS = {0: ("bid",), 1: ("bid",), 2: ("bid",), 3: ("person", "auction"), 4: ("auction", "bid"),
          5: ("bid",), 7: ("bid",), 8: ("person", "auction")}
TYPES = {"person": Person, "auction": Auction, "bid": Bid}


def build(p, query: int, data: str, output: str, columnar: bool = True) -> None:
    inputs = {}
    for kind in INPUTS[query]:
        parsed = (
            p
            | f"Read{kind}" >> ReadFrom(f"{data}/{kind}s.jsonl", columnar=columnar)
            | f"Parse{kind}" >> ParseRecords(TYPES[kind], timestamp_field="dateTime", timestamp_unit="ms")
        )
        inputs[kind] = parsed.records
        parsed.dead_letters | f"DeadLetters{kind}" >> WriteTo(f"{output}/dead_letters_{kind}.jsonl")
    result = QUERIES[query](inputs.get("bid"), inputs.get("person"), inputs.get("auction"))
    result | "Write" >> WriteTo(f"{output}/result.parquet")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--query", type=int, required=True, choices=sorted(QUERIES))
    parser.add_argument("--data", required=True, help="directory of persons/auctions/bids.jsonl")
    parser.add_argument("--output", required=True)
    parser.add_argument("--per_element", action="store_true", help="hybridflow's per-record path instead of tables")
    args, beam_args = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner", *beam_args])) as p:
        build(p, args.query, args.data, args.output, columnar=not args.per_element)


if __name__ == "__main__":
    main()
