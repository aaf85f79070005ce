"""Benchmark (a), idiomatic Beam: count and sum of amount per card in 60 s
fixed windows, written the way Beam's examples write it (ReadFromText ->
parse -> timestamp -> WindowInto -> CombinePerKey -> format -> write), plain
Beam only. Invalid records are dropped by the same validation rules as
hybridflow's Transaction (bench/baselines/transactions.py).

    python -m bench.baselines.aggregate_beam --input 'bench/data/n100000/jsonl/*.jsonl' --output /tmp/out
"""

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from bench.baselines.transactions import arguments, read_transactions

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
    args, beam_args = arguments(argv)
    options = PipelineOptions(["--runner=FnApiRunner", *beam_args])
    with beam.Pipeline(options=options) as p:
        (
            read_transactions(p, args.input)
            | "Timestamp" >> beam.Map(lambda t: TimestampedValue((t["card_id"], t["amount"]), t["event_time"]))
            | "Window" >> beam.WindowInto(FixedWindows(60))
            | "CountAndSum" >> beam.CombinePerKey(CountAndSum())
            | "Format" >> beam.ParDo(FormatRow())
            | "Write" >> WriteToParquet(f"{args.output}/aggregates", SCHEMA, file_name_suffix=".parquet")
        )


if __name__ == "__main__":
    main()
