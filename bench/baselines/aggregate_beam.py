"""Benchmark (a), idiomatic Beam: count and sum of amount per card in 60 s
fixed windows, written the way Beam's examples write it (ReadFromText ->
parse -> timestamp -> WindowInto -> CombinePerKey -> format -> write), plain
Beam only. Invalid records are dropped by the same validation rules as
hybridflow's Transaction (required fields, amount 0..1e6, currency and
country codes, ids without spaces, an ISO-8601 event time).

    python -m bench.baselines.aggregate_beam --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import argparse
import datetime
import json
import math
import re

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import ReadFromParquet, WriteToParquet
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows, TimestampedValue

TEXT_FIELDS = ("txn_id", "card_id", "customer_id", "merchant_id", "category", "currency", "country")
PATTERNS = {
    "txn_id": re.compile(r"\S{1,128}"),
    "card_id": re.compile(r"\S{1,64}"),
    "currency": re.compile(r"[A-Z]{3}"),
    "country": re.compile(r"[A-Z]{2}"),
}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def event_seconds(value):
    if isinstance(value, datetime.datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    else:
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
    return (dt - EPOCH) // datetime.timedelta(microseconds=1) / 1e6


def to_transaction(data):
    """A dict of valid, typed fields, or None."""
    if not isinstance(data, dict):
        return None
    txn = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        pattern = PATTERNS.get(name)
        if pattern is not None and not pattern.fullmatch(value):
            return None
        txn[name] = value
    amount = data.get("amount")
    try:
        if isinstance(amount, bool) or amount is None:
            return None
        amount = float(amount.strip() if isinstance(amount, str) else amount)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(amount) or not 0.0 <= amount <= 1_000_000.0:
        return None
    txn["amount"] = amount
    try:
        txn["event_time"] = event_seconds(data.get("event_time"))
    except (TypeError, ValueError, OverflowError):
        return None
    return txn


def parse_line(line):
    try:
        txn = to_transaction(json.loads(line)) if line.strip() else None
    except ValueError:
        txn = None
    return [txn] if txn is not None else []


class CountAndSum(beam.CombineFn):
    def create_accumulator(self):
        return 0, 0.0

    def add_input(self, acc, amount):
        return acc[0] + 1, acc[1] + amount

    def merge_accumulators(self, accs):
        counts, sums = zip(*accs)
        return sum(counts), sum(sums)

    def extract_output(self, acc):
        return acc


class FormatRow(beam.DoFn):
    def process(self, element, window=beam.DoFn.WindowParam):
        card_id, (n, total) = element
        yield {"card_id": card_id, "window_start": window.start.micros, "n": n, "total": total}


SCHEMA = pa.schema([("card_id", pa.string()), ("window_start", pa.int64()), ("n", pa.int64()), ("total", pa.float64())])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args, beam_args = parser.parse_known_args(argv)
    options = PipelineOptions(["--runner=FnApiRunner", *beam_args])
    with beam.Pipeline(options=options) as p:
        if args.input.endswith(".parquet"):
            txns = p | "Read" >> ReadFromParquet(args.input) | "Validate" >> beam.FlatMap(
                lambda d: [t for t in [to_transaction(d)] if t is not None]
            )
        else:
            txns = p | "Read" >> beam.io.ReadFromText(args.input) | "Parse" >> beam.FlatMap(parse_line)
        (
            txns
            | "Timestamp" >> beam.Map(lambda t: TimestampedValue((t["card_id"], t["amount"]), t["event_time"]))
            | "Window" >> beam.WindowInto(FixedWindows(60))
            | "CountAndSum" >> beam.CombinePerKey(CountAndSum())
            | "Format" >> beam.ParDo(FormatRow())
            | "Write" >> WriteToParquet(f"{args.output}/aggregates", SCHEMA, file_name_suffix=".parquet")
        )


if __name__ == "__main__":
    main()
