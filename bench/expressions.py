"""Micro benchmark: Filter + Derive on Arrow tables vs per record, FnApiRunner.

The same bids (Nexmark-like: auction, bidder, price, channel, event time) go
through ``Filter("price > 100 and auction % 123 == 0")`` then
``Derive(euro="price * 0.89")`` three ways, each a whole pipeline run in this
process, wall time from ``Pipeline.run()`` to the end:

- ``columnar``: hybridflow's transforms on Arrow tables (pyarrow.compute);
- ``per_record``: hybridflow's transforms on records (the compiled evaluator);
- ``beam``: ``beam.Filter`` + ``beam.Map`` with Python lambdas on records.

Every variant starts from the same Arrow tables, made by a first step of the
pipeline (the per-record variants explode them, as ``ToRecords`` does before
any per-record step) and ends in a count, which must be equal. Not a test: never part of ``make test``.

    .venv/bin/python -m bench.expressions --n 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import NamedTuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow import Derive, Filter
from hybridflow.columnar import ToRecords, arrow_tables
from hybridflow.schemas import register

PREDICATE = "price > 100 and auction % 123 == 0"
EURO = "price * 0.89"


@register
class Bid(NamedTuple):
    auction: int
    bidder: int
    price: float
    channel: str
    event_time: Timestamp


def table(start: int, size: int):
    """Bids ``start`` .. ``start + size`` as one Arrow table (seeded by ``start``)."""
    import numpy as np
    import pyarrow as pa

    from hybridflow.io.files import arrow_schema

    rng = np.random.default_rng(start)
    return pa.table([
        pa.array(rng.integers(1000, 1_000_000, size)),
        pa.array(rng.integers(1, 100_000, size)),
        pa.array(np.round(rng.exponential(100.0, size), 2)),
        pa.array(rng.choice(["web", "app", "Google", "Baidu"], size)),
        pa.array(1_767_225_600_000_000 + np.arange(start, start + size) * 1000, pa.timestamp("us", tz="UTC")),
    ], schema=arrow_schema(Bid))


class _Euro(NamedTuple):
    auction: int
    bidder: int
    price: float
    channel: str
    event_time: Timestamp
    euro: float


register(_Euro)


def _steps(variant: str, source):
    if variant == "columnar":
        hot = source | Filter(PREDICATE)
        derived = hot.records | Derive(euro=EURO)
        return derived.records | "Rows" >> beam.Map(lambda t: t.num_rows)
    records = source | ToRecords()
    if variant == "per_record":
        hot = records | Filter(PREDICATE)
        derived = hot.records | Derive(euro=EURO)
        return derived.records | "One" >> beam.Map(lambda r: 1)
    hot = records | beam.Filter(lambda r: r.price > 100 and r.auction % 123 == 0)
    derived = hot | beam.Map(lambda r: _Euro(*r, r.price * 0.89)).with_output_types(_Euro)
    return derived | "One" >> beam.Map(lambda r: 1)


def run(variant: str, n: int, result_path: str, per_table: int = 100_000) -> float:
    # the tables are made in the pipeline: beam.Create of ready tables would pickle
    # and bz2-compress them into the pipeline proto, which costs more than the steps
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    specs = [(start, min(per_table, n - start)) for start in range(0, n, per_table)]
    source = p | beam.Create(specs) | "Tables" >> beam.MapTuple(table).with_output_types(
        arrow_tables(Bid, "event_time")
    )
    count = _steps(variant, source) | beam.CombineGlobally(sum)
    _ = count | beam.Map(lambda c: open(result_path, "w").write(str(c)))
    started = time.perf_counter()
    p.run().wait_until_finish()
    return time.perf_counter() - started


def main(argv=None):
    import os
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["columnar", "per_record", "beam"])
    args = parser.parse_args(argv)
    figures, counts = {}, {}
    for variant in args.variants:
        walls = []
        for _ in range(args.repeat):
            path = os.path.join(tempfile.mkdtemp(), "count")
            walls.append(run(variant, args.n, path))
            counts[variant] = int(open(path).read())
        figures[variant] = statistics.median(walls)
    assert len(set(counts.values())) == 1, f"the variants disagree: {counts}"
    print(json.dumps({"n": args.n, "kept": next(iter(counts.values())), "seconds": figures,
                      "load_average": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
