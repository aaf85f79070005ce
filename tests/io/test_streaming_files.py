"""Streaming file sinks: every record that reaches one is in a whole, readable
file when the job ends, in event-time windows named for globbing.

Each stream is compared with the same records written by a batch run: on
Beam's bundle-based DirectRunner with a TestStream (every format), and on
Prism and Flink with a real unbounded source (Parquet and JSON lines). The
windowed aggregates fire their last windows only when the watermark reaches
+inf at the end of the stream: the panes that Beam's own windowed file writes
lost.
"""

import csv
import glob
import json
import os
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.utils.timestamp import MIN_TIMESTAMP

from hybridflow import InvalidUriError, ParseRecords, ReadFrom, Transaction, WindowedAggregate, WriteTo
from hybridflow.testing import (
    START,
    CreateEvents,
    EventStream,
    Watermark,
    batch_pipeline,
    streaming_pipeline,
    transactions,
)
from tests.runners._pipelines import PAST_START
from tests.runners.conftest import runner_params

pytestmark = pytest.mark.streaming


def read_rows(path, fmt):
    """The rows of one file, as its format gives them back; fails on a truncated file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if fmt == "avro":
        import fastavro

        with open(path, "rb") as f:
            return list(fastavro.reader(f))
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "csv":
            return list(csv.DictReader(f))
        return [json.loads(line) for line in f]


def read_output(sink, fmt):
    """(rows sorted, file names) of the files at ``sink.location``; no temporary file may be left."""
    files = sorted(glob.glob(sink.location))
    root = sink.location.split("/dt=*/")[0] if "/dt=*/" in sink.location else os.path.dirname(sink.location)
    leftovers = [f for _, _, names in os.walk(root) for f in names if f.startswith(".tmp-")]
    assert leftovers == [], leftovers
    rows = [row for path in files for row in read_rows(path, fmt)]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)), [os.path.basename(f) for f in files]


# --------------------------------------------------------------------------
# The bundle-based DirectRunner: a TestStream through every format

STREAM = transactions([(f"c{i % 3}", float(i), i * 7) for i in range(40)])  # 273 s: five 60 s windows
SINKS = {  # name -> (format, sink URI under the output directory)
    "jsonl": ("jsonl", "agg.jsonl"),
    "csv": ("csv", "agg.csv"),
    "avro": ("avro", "agg.avro"),
    "parquet": ("parquet", "agg.parquet"),
    "partitioned": ("jsonl", "lake/agg.jsonl?partition_by=window_start"),
}


def aggregate(records):
    return (records | WindowedAggregate(
        key="card_id", window="fixed:60s", aggregations={"n": "count", "total": "sum(amount)"})).aggregates


def write_to_every_sink(aggregates, directory):
    sinks = {name: WriteTo(f"{directory}/{uri}") for name, (_, uri) in SINKS.items()}
    for name, sink in sinks.items():
        aggregates | f"Write{name}" >> sink
    return sinks


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The aggregates of STREAM written to every sink by a batch and a streaming run."""
    with batch_pipeline() as p:
        batch = write_to_every_sink(aggregate(p | CreateEvents(STREAM)), tmp_path_factory.mktemp("batch"))
    # the watermark moves every 10 records; the last window fires when it reaches +inf
    items = []
    for i, record in enumerate(STREAM):
        items += [record] + ([Watermark(record.event_time)] if i % 10 == 9 else [])
    with streaming_pipeline() as p:
        stream = write_to_every_sink(aggregate(p | EventStream(items)), tmp_path_factory.mktemp("stream"))
    return {"batch": batch, "stream": stream}


@pytest.mark.parametrize("name", list(SINKS))
def test_a_stream_writes_the_batch_rows_in_whole_files(written, name):
    fmt = SINKS[name][0]
    streamed, files = read_output(written["stream"][name], fmt)
    batch, _ = read_output(written["batch"][name], fmt)
    assert len(batch) == 15  # 3 cards x 5 windows
    assert streamed == batch
    # a file per event-time window (and partition), the last one written at +inf
    windows = sorted({f.split("-", 1)[1].rsplit("-", 4)[0] for f in files})
    assert windows == [f"20260101T000{m}00-20260101T000{m + 1}00" for m in range(5)], files


# --------------------------------------------------------------------------
# Late records and file names


def test_late_records_are_written_as_later_panes_of_their_window(tmp_path):
    on_time = transactions([("c1", 1.0, 10), ("c2", 2.0, 70)])
    late = [t._replace(txn_id=f"late{i}") for i, t in enumerate(transactions([("c3", 3.0, 20), ("c4", 4.0, 130)]))]
    sink = WriteTo(f"{tmp_path}/txns.jsonl")
    with streaming_pipeline() as p:
        # both late records arrive when the watermark is past their windows' ends
        _ = p | EventStream(on_time + [Watermark(START + 200)] + late + [Watermark(START + 400)]) | sink
    rows, files = read_output(sink, "jsonl")
    assert files == [
        "txns-20260101T000000-20260101T000100-000-00000-of-00001.jsonl",  # t0
        "txns-20260101T000000-20260101T000100-001-00000-of-00001.jsonl",  # late0, a late pane
        "txns-20260101T000100-20260101T000200-000-00000-of-00001.jsonl",  # t1
        "txns-20260101T000200-20260101T000300-000-00000-of-00001.jsonl",  # late1: its window's only pane
    ]
    assert [read_rows(tmp_path / f, "jsonl")[0]["txn_id"] for f in files] == ["t0", "late0", "t1", "late1"]
    assert len(rows) == 4


def test_window_file_names_and_the_location_glob(tmp_path):
    records = transactions([("c1", 1.0, 0), ("c2", 2.0, 59.999999), ("c3", 3.0, 60), ("c4", 4.0, 3600)])
    # beside the files: names an inexact glob would match
    decoys = {"txns-old.jsonl", "txns-late-00000-of-00001.jsonl", "txns2-00000-of-00001.jsonl"}
    for decoy in decoys:
        (tmp_path / decoy).write_text("{}\n")
    sinks = {
        "flat": WriteTo(f"{tmp_path}/txns.jsonl?every=60&shards=2"),
        "partitioned": WriteTo(f"{tmp_path}/lake/txns.jsonl?every=3600&partition_by=event_time"),
    }
    stream = test_stream.TestStream().add_elements([beam.window.TimestampedValue(r, r.event_time) for r in records])
    # a record without an event time (Beam's minimum timestamp) goes in the first nameable window
    stream = stream.add_elements([beam.window.TimestampedValue(records[0]._replace(txn_id="untimed"), MIN_TIMESTAMP)])
    with streaming_pipeline() as p:
        txns = p | stream.advance_watermark_to_infinity().with_output_types(Transaction)
        for name, sink in sinks.items():
            txns | name >> sink
    assert sinks["flat"].location == f"{tmp_path}/txns-????????T??????-????????T??????-*-?????-of-?????.jsonl"
    _, flat = read_output(sinks["flat"], "jsonl")
    assert set(flat) == {f.name for f in tmp_path.iterdir() if f.is_file()} - decoys  # exactly the files written
    windows = {f.rsplit("-", 3)[0] for f in flat}
    assert windows == {
        "txns-19700101T000000-19700101T000100-000",
        "txns-20260101T000000-20260101T000100-000",
        "txns-20260101T000100-20260101T000200-000",
        "txns-20260101T010000-20260101T010100-000",
    }, flat
    assert all(f.endswith(("-00000-of-00002.jsonl", "-00001-of-00002.jsonl")) for f in flat), flat

    assert sinks["partitioned"].location == (
        f"{tmp_path}/lake/dt=*/hour=*/txns-????????T??????-????????T??????-*-?????-of-?????.jsonl")
    found = sorted(os.path.relpath(f, tmp_path / "lake") for f in glob.glob(sinks["partitioned"].location))
    assert found == [
        "dt=2026-01-01/hour=00/txns-19700101T000000-19700101T010000-000-00000-of-00001.jsonl",
        "dt=2026-01-01/hour=00/txns-20260101T000000-20260101T010000-000-00000-of-00001.jsonl",
        "dt=2026-01-01/hour=01/txns-20260101T010000-20260101T020000-000-00000-of-00001.jsonl",
    ]
    rows, _ = read_output(sinks["partitioned"], "jsonl")
    assert sorted(r["txn_id"] for r in rows) == ["t0", "t1", "t2", "t3", "untimed"]


@pytest.mark.parametrize("every, error", [
    ("0", "every=0 is not a window length; use whole seconds from 1 to 86400"),
    ("90000", "every=90000 is not a window length; use whole seconds from 1 to 86400"),
    ("1.5", "every='1.5' must be an integer"),
])
def test_a_window_length_that_is_not_one_is_a_usage_error(tmp_path, every, error):
    with pytest.raises(InvalidUriError, match=error):
        WriteTo(f"{tmp_path}/x.jsonl?every={every}")


@pytest.mark.services
def test_a_stream_to_s3_writes_whole_objects(s3_server, s3_bucket):
    """On an object store the rename is a copy and a delete: the final objects are whole, no temporary one stays."""
    import io

    import pyarrow.parquet as pq

    sink = WriteTo(f"s3://{s3_bucket}/stream/txns.parquet")
    with streaming_pipeline(*s3_server.pipeline_flags) as p:
        _ = p | EventStream(STREAM[:10]) | sink  # 0 s to 63 s: two windows
    client = s3_server.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [
        "stream/txns-20260101T000000-20260101T000100-000-00000-of-00001.parquet",
        "stream/txns-20260101T000100-20260101T000200-000-00000-of-00001.parquet",
    ]
    rows = [row for key in keys
            for row in pq.read_table(io.BytesIO(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())).to_pylist()]
    assert sorted(r["txn_id"] for r in rows) == sorted(t.txn_id for t in STREAM[:10])


# --------------------------------------------------------------------------
# Prism and Flink: a real unbounded source

SOURCE = f"synthetic://transactions?rate=50&count=300&start={PAST_START}&seed=3&population=3&cards=5&late=0&malformed=0"


def real_source_outputs(p, directory, bounded):
    """The source's records to JSON lines, their windowed aggregates to Parquet; returns the sinks."""
    records = (p | "Read" >> ReadFrom(SOURCE, bounded=bounded) | "Parse" >> ParseRecords(Transaction)).records
    sinks = {"records": WriteTo(f"{directory}/records.jsonl"), "aggregates": WriteTo(f"{directory}/agg.parquet")}
    records | "WriteRecords" >> sinks["records"]
    aggregate(records) | "WriteAggregates" >> sinks["aggregates"]
    return sinks


@pytest.fixture(scope="module")
def real_source_batch(tmp_path_factory):
    directory = tmp_path_factory.mktemp("real-batch")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        sinks = real_source_outputs(p, directory, bounded=True)
    return {"records": read_output(sinks["records"], "jsonl")[0], "aggregates": read_output(sinks["aggregates"], "parquet")[0]}


@pytest.mark.parametrize("runner", runner_params("prism", "flink"))
def test_a_real_stream_on_prism_and_flink_writes_the_batch_rows(request, runner, real_source_batch, tmp_path):
    flags = request.getfixturevalue(f"{runner}_server").flags("--streaming")
    p = beam.Pipeline(options=PipelineOptions(flags))
    sinks = real_source_outputs(p, tmp_path, bounded=False)
    p.run().wait_until_finish()

    records, _ = read_output(sinks["records"], "jsonl")
    assert len(records) == 300
    assert records == real_source_batch["records"]
    aggregates, files = read_output(sinks["aggregates"], "parquet")
    assert aggregates == real_source_batch["aggregates"]
    assert all("-000-" in f for f in files)  # no late data in this stream: one pane per window


# --------------------------------------------------------------------------
# docs/guarantees.md, "Streaming file sinks": its examples run as written

GUARANTEES = Path(__file__).resolve().parents[2] / "docs" / "guarantees.md"


def doc_example(name):
    """The code block after ``<!-- example: NAME -->`` and the block after it (what it prints)."""
    text = GUARANTEES.read_text()
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```\n(?:.*?\n```\n(.*?)```)?", text, re.S)
    assert match, f"no example {name!r} in {GUARANTEES}"
    return match.group(1), match.group(2)


def test_the_streaming_file_sink_example(tmp_path, capsys):
    code, printed = doc_example("streaming-file-sink")
    namespace = {"__name__": "guarantees_example"}
    exec(compile(code, str(GUARANTEES), "exec"), namespace)
    namespace["run"](str(tmp_path))
    assert capsys.readouterr().out == printed


@pytest.mark.prism
def test_the_prism_panic_reproduction_still_panics(prism_flags):
    """The upstream-shaped reproduction in the docs: when Prism fixes the bug, this fails; update the docs."""
    code, _ = doc_example("prism-window-end-panic")
    with pytest.raises(RuntimeError, match="at watermark \\+inf panicked\nassignment to entry in nil map"):
        exec(compile(code, str(GUARANTEES), "exec"), {"__name__": "prism_reproduction"})
