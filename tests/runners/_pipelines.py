"""Pipelines and readers shared by the runner-matrix tests."""

import datetime
import glob
import json

import pyarrow.parquet as pq

from hybridflow import ParseRecords, ReadFrom, Transaction, WindowedAggregate
from hybridflow.pipelines import get_pipeline
from hybridflow.pipelines.run import run_pipeline
from hybridflow.testing import Collect

ENGINE = {
    "fnapi": "FnApiRunner",
    "prism": "PrismRunner (Prism)",
    "flink": "FlinkRunner (Flink 1.19, local mini-cluster)",
    "spark": "SparkRunner (Spark 3, local[2])",
}

# An explicit start an hour ago: an unbounded synthetic read then replays a
# fixed, already-past stretch of event time through PeriodicImpulse (its
# watermark follows the ticks) and stops after `count` records, so a streaming
# run is deterministic and its events are exactly those of the bounded read.
_now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
PAST_START = (_now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

WINDOWS = {"fixed": "fixed:60s", "sliding": "sliding:5m/1m", "session": "session:5s"}
AGGREGATIONS = {
    "n": "count",
    "total": "sum(amount)",
    "mean": "mean(amount)",
    "sd": "stddev(amount)",
    "top": "max(amount)",
    "countries": "count_distinct(country)",
    "merchants": "approx_distinct(merchant_id)",
    "p95": "p95(amount)",
}


def windowed_aggregates(p, source, directory, bounded):
    """ReadFrom(source) -> ParseRecords -> WindowedAggregate per window kind -> Collect.

    Returns the parsed records (to check boundedness)."""
    records = (p | "Read" >> ReadFrom(source, bounded=bounded) | "Parse" >> ParseRecords(Transaction)).records
    for name, window in WINDOWS.items():
        result = records | f"Aggregate{name}" >> WindowedAggregate(
            key="card_id", window=window, aggregations=AGGREGATIONS, allowed_lateness="10m"
        )
        result.aggregates | f"Collect{name}" >> Collect(f"{directory}/{name}")
        result.late | f"CollectLate{name}" >> Collect(f"{directory}/late-{name}")
    return records


def run_fraud(flags, directory):
    """Runs the fraud pipeline as the CLI does; returns (summary, outputs)."""
    spec = get_pipeline("fraud")
    summary = run_pipeline(spec, spec.options([*flags, f"--output={directory}"]))
    return summary, read_fraud_outputs(directory)


def read_fraud_outputs(directory):
    """Every output of a fraud run: JSON lines as dicts, Parquet rows as dicts."""
    out = {}
    for name in ("alerts", "aggregates", "dead_letters", "late"):
        rows = [json.loads(line) for path in glob.glob(f"{directory}/{name}*.jsonl") for line in open(path, encoding="utf-8")]
        if name == "dead_letters":
            for row in rows:
                row.pop("failed_at")  # processing time of the failure
        out[name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    out["profiles"] = sorted(
        (row for path in glob.glob(f"{directory}/profiles*.parquet") for row in pq.read_table(path).to_pylist()),
        key=lambda r: r["card_id"],
    )
    return out


def dead_letter_reasons(rows):
    counts = {}
    for row in rows:
        counts[row["error_type"]] = counts.get(row["error_type"], 0) + 1
    return counts
