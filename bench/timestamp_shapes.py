"""Timestamp shapes: the aggregate benchmark on the same events with ``event_time``
as ISO-8601 text or as epoch numbers (seconds as integers or floats,
milliseconds, microseconds; see ``bench.data.SHAPES``).

Each shape runs ``bench.aggregate_hybridflow`` (columnar JSON lines ->
ParseRecords -> WindowedAggregate, 60 s fixed windows -> Parquet, FnApiRunner)
as its own process, ``--repeat`` rounds with the shapes interleaved; the
whole-process wall time is measured (``bench.run.measure``). Each shape's
aggregates are compared with the ISO shape's (exactly): every shape carries
the generator's millisecond event times except ``epoch_s`` (whole seconds),
whose windows can differ.

    python -m bench.timestamp_shapes --n 1000000 --shapes iso,epoch_s,epoch_s_float,epoch_ms --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys

from bench.compare import compare, read_rows
from bench.data import SHAPES, ensure_data, timestamp_unit
from bench.run import AGGREGATE_COLUMNS, PY, ROOT, measure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", default="bench/data/out-shapes")
    args = parser.parse_args(argv)
    shapes = args.shapes.split(",")
    work = ROOT / args.work
    walls: dict[str, list[float]] = {shape: [] for shape in shapes}
    for _ in range(args.repeat):
        for shape in shapes:
            data = ensure_data(args.n, str(ROOT / "bench" / "data"), timestamps=shape)
            out = work / shape
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cmd = [PY, "-m", "bench.aggregate_hybridflow", "--input", data["jsonl"], "--output", str(out),
                   "--timestamp_unit", timestamp_unit(shape)]
            result = measure(cmd, out.parent / f"{shape}.log")
            if result["exit_code"] != 0:
                print(f"{shape}: exit {result['exit_code']}, see {out.parent / f'{shape}.log'}", file=sys.stderr)
                return 1
            walls[shape].append(result["wall_s"])
    columns = AGGREGATE_COLUMNS["aggregates"]
    reference = read_rows(str(work / "iso" / "aggregates*.parquet"), columns) if "iso" in shapes else None
    rows = []
    for shape in shapes:
        aggregates = read_rows(str(work / shape / "aggregates*.parquet"), columns)
        dead = sum(1 for f in (work / shape).glob("dead_letters*.jsonl") for _ in open(f))
        same = compare(aggregates, reference, exact=True)[1] if reference is not None else "-"
        rows.append({"shape": shape, "wall_s": walls[shape], "median_s": statistics.median(walls[shape]),
                     "aggregates": aggregates.num_rows, "dead_letters": dead, "vs_iso": same})
    print(f"{'shape':<14} {'median s':>8}  {'runs (s)':<24} {'aggregates':>10} {'dead':>6}  vs iso")
    for r in rows:
        runs = ", ".join(f"{w:.1f}" for w in r["wall_s"])
        print(f"{r['shape']:<14} {r['median_s']:>8.1f}  {runs:<24} {r['aggregates']:>10} {r['dead_letters']:>6}  {r['vs_iso']}")
    (work / "shapes.json").write_text(json.dumps({"n": args.n, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
