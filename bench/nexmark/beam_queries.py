"""Beam's own Nexmark queries (``apache_beam.testing.benchmarks.nexmark``),
unmodified, on the same files.

The events are read as Beam's launcher reads them in batch mode
(``NexmarkLauncher.read_from_file``: ``ReadFromText``, ``ParseJsonEventFn``,
event time from ``date_time``), from the files the query needs; the query's
``load(events, query_args)`` runs with the launcher's ``query_args``. The
launcher itself is not used because it keeps no output: here each result
element is written as one JSON line, with its window's start (epoch ms)
where the query's output is windowed, so that the outputs can be compared.

    python -m bench.nexmark.beam_queries --query 5 --data DIR --output /tmp/q5 --runner FnApiRunner
"""

from __future__ import annotations

import argparse
import json

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, TypeOptions
from apache_beam.testing.benchmarks.nexmark import nexmark_util
from apache_beam.testing.benchmarks.nexmark.queries import query0, query1, query2, query3, query4, query5, query7, query8
from apache_beam.transforms import window

QUERIES = {0: query0, 1: query1, 2: query2, 3: query3, 4: query4, 5: query5, 7: query7, 8: query8}
INPUTS = {0: ("bid",), 1: ("bid",), 2: ("bid",), 3: ("person", "auction"), 4: ("auction", "bid"),
          5: ("bid",), 7: ("bid",), 8: ("person", "auction")}
#: NexmarkLauncher.run's query_args
QUERY_ARGS = {"auction_skip": 123, "window_size_sec": 10, "window_period_sec": 5, "fanout": 5,
              "num_max_workers": 5, "max_log_events": 100000, "occasional_delay_sec": 3,
              "max_auction_waiting_time": 600}
#: Beam's result names -> the compared column names
RENAMES = {"auction_id": "auction"}


class ToJson(beam.DoFn):
    """One output element as a JSON line: model objects as their fields (times in
    epoch ms), dicts as they are; with ``window_start`` when the element is windowed."""

    def __init__(self, query: int):
        self._query = query

    def process(self, element, w=beam.DoFn.WindowParam):
        if isinstance(element, dict):
            row = dict(element)
        else:
            row = dict(vars(element))
            row["dateTime"] = row.pop("date_time").micros // 1000
        if self._query == 3:  # Q3's auction_id is compared under its own name
            pass
        else:
            row = {RENAMES.get(k, k): v for k, v in row.items()}
        if not isinstance(w, window.GlobalWindow):
            row["window_start"] = w.start.micros // 1000
        yield json.dumps(row)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--query", type=int, required=True, choices=sorted(QUERIES))
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    args, beam_args = parser.parse_known_args(argv)
    options = PipelineOptions(beam_args)
    # Beam's launcher sets this for every query; only Q3's trigger needs it, and with it set
    # DirectRunner skips Prism (unsafe triggers), so it is set for Q3 only
    options.view_as(TypeOptions).allow_unsafe_triggers = args.query == 3
    with beam.Pipeline(options=options) as p:
        nexmark_util.setup_coder()
        texts = [p | f"Read{kind}" >> beam.io.ReadFromText(f"{args.data}/{kind}s.jsonl") for kind in INPUTS[args.query]]
        events = (
            texts | beam.Flatten()
            | "deserialization" >> beam.ParDo(nexmark_util.ParseJsonEventFn())
            | "timestamping" >> beam.Map(lambda e: window.TimestampedValue(e, e.date_time))
        )
        output = QUERIES[args.query].load(events, QUERY_ARGS, options)
        _ = output | beam.ParDo(ToJson(args.query)) | beam.io.WriteToText(f"{args.output}/result", ".jsonl")


if __name__ == "__main__":
    main()
