"""Benchmark (a), hybridflow: WindowedAggregate alone -- 60 s fixed windows,
count and sum of amount per card -- after ParseRecords, read columnar from
JSON lines or Parquet, results to Parquet (dead letters to JSON lines).

    python -m bench.aggregate_hybridflow --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import ParseRecords, Transaction, WindowedAggregate
from hybridflow.io import ReadFrom, WriteTo


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--per_element", action="store_true", help="hybridflow's per-element path (for comparison)")
    parser.add_argument("--timestamp_unit", default="s", help="unit of epoch-number event times: s, ms or us")
    args, beam_args = parser.parse_known_args(argv)
    parse = ParseRecords(Transaction, timestamp_unit=args.timestamp_unit)
    options = PipelineOptions(["--runner=FnApiRunner", *beam_args])
    with beam.Pipeline(options=options) as p:
        parsed = p | "Read" >> ReadFrom(args.input, columnar=not args.per_element) | "Parse" >> parse
        windows = parsed.records | "PerCard" >> WindowedAggregate(
            key="card_id", window="fixed:60s", aggregations={"n": "count", "total": "sum(amount)"}
        )
        windows.aggregates | "WriteAggregates" >> WriteTo(f"{args.output}/aggregates.parquet")
        parsed.dead_letters | "WriteDeadLetters" >> WriteTo(f"{args.output}/dead_letters.jsonl")


if __name__ == "__main__":
    main()
