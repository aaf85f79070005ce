"""``make bench-nexmark``: Nexmark Q0-Q5, Q7, Q8 -- hybridflow vs Beam's own
queries vs DuckDB on the same generated events, in one run.

For each query, each implementation runs as a separate process on the same
JSON-lines files (:mod:`bench.nexmark.generator`), timed as a whole process
(start-up, pipeline construction, reading, writing: what a user waits for),
``--repeat`` times (the median counts):

  hybridflow        bench/nexmark/hybridflow_queries.py, FnApiRunner, columnar
  beam_fnapi        Beam's queries, unmodified, on the FnApiRunner
  beam_direct       Beam's queries on the default runner (DirectRunner: Prism
                    when it is provisioned, else the FnApiRunner)
  duckdb            bench/nexmark/duckdb_queries.py

Every output is compared with hybridflow's (:mod:`bench.nexmark.compare`).
Where Beam's query computes something else, the comparison is skipped and the
reason printed (:data:`NOT_COMPARABLE`). Results go to
bench/results/nexmark-<time>.json.

    python -m bench.nexmark.run --bids 1000000                 # what `make bench` runs (NEXMARK_BIDS)
    python -m bench.nexmark.run --bids 100000 --queries 1,2,5,7 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import statistics
import sys

from bench.nexmark.compare import difference, rows
from bench.nexmark.generator import EVENT_RATE, generate
from bench.run import ROOT, machine, measure

PY = sys.executable
IMPLS = ("hybridflow", "beam_fnapi", "beam_direct", "duckdb")
#: query -> why Beam's output is not compared with hybridflow's
NOT_COMPARABLE = {
    3: "Beam's Q3 groups in the global window with a Repeatedly(AfterCount(30)) trigger, which fires per "
       "seller only once 30 of its events have arrived; on bounded input no seller reaches 30 (the test "
       "checks it), so it outputs nothing: it is a streaming query",
    4: "Beam's Q4 fails in this SDK on both runners (TypeError: Cannot convert _OpaqueWindow to "
       "_IntervalWindowBase, in its WinningBids window function's coder); it also averages over sliding "
       "10 s windows of closing times, where hybridflow's and DuckDB's Q4 average over the whole input",
}
#: the issue's targets
TARGETS = {"beam_fnapi": 10.0, "beam_direct": 5.0, "duckdb": 3.0}


def command(impl: str, query: int, data: str, out: str) -> list[str]:
    if impl == "hybridflow":
        return [PY, "-m", "bench.nexmark.hybridflow_queries", "--query", str(query), "--data", data, "--output", out]
    if impl == "duckdb":
        return [PY, "-m", "bench.nexmark.duckdb_queries", "--query", str(query), "--data", data, "--output", out]
    runner = ["--runner", "FnApiRunner"] if impl == "beam_fnapi" else []  # DirectRunner: Beam's default
    return [PY, "-m", "bench.nexmark.beam_queries", "--query", str(query), "--data", data, "--output", out, *runner]


def run_query(query: int, data: str, work: pathlib.Path, impls, repeat: int, beam_repeat: int) -> dict:
    results: dict = {}
    outputs: dict = {}
    for impl in impls:
        out = work / f"q{query}" / impl
        samples = []
        for _ in range(beam_repeat if impl.startswith("beam") else repeat):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            samples.append(measure(command(impl, query, data, str(out)), out.parent / f"{impl}.log"))
        ok = [s["wall_s"] for s in samples if s["exit_code"] == 0]
        m = {"wall_s": round(statistics.median(ok), 3) if len(ok) == len(samples) else None,
             "samples_s": [s["wall_s"] for s in samples], "exit_codes": [s["exit_code"] for s in samples],
             "peak_rss_mib": max(s["peak_rss_mib"] for s in samples)}
        if m["wall_s"] is not None:
            outputs[impl] = rows(str(out), query)
            m["rows"] = len(outputs[impl])
        else:
            m["log"] = str(out.parent / f"{impl}.log")
        results[impl] = m
        print(f"  q{query} {impl:<12} " + (f"{m['wall_s']:8.2f} s" if m["wall_s"] else "  FAILED  ")
              + f"  ({', '.join(f'{s:.1f}' for s in m['samples_s'])})  rows {m.get('rows', '-')}", flush=True)
    reference = outputs.get("hybridflow")
    for impl, m in results.items():
        if impl == "hybridflow":
            m["equal"] = "ref" if reference is not None else "FAIL"
        elif impl.startswith("beam") and query in NOT_COMPARABLE:  # failed or not: the reason says why
            m["equal"] = "n/a"
            m["why"] = NOT_COMPARABLE[query]
        elif reference is None or impl not in outputs:
            m["equal"] = "FAIL"
        else:
            why = difference(reference, outputs[impl])
            m["equal"] = "no" if why else "yes"
            if why:
                m["why"] = why
                print(f"    {impl} differs from hybridflow: {why}")
    hf = results.get("hybridflow", {}).get("wall_s")
    ratios = {}
    for impl in ("beam_fnapi", "beam_direct"):
        t = results.get(impl, {}).get("wall_s")
        if hf and t and results[impl]["equal"] == "yes":
            ratios[f"speedup_vs_{impl}"] = round(t / hf, 2)
    duck = results.get("duckdb", {}).get("wall_s")
    if hf and duck and results["duckdb"]["equal"] == "yes":
        ratios["time_vs_duckdb"] = round(hf / duck, 2)
    return {"query": query, "results": results, "ratios": ratios}


def table(rows_: list[dict]) -> str:
    head = (f"{'query':<6}" + "".join(f"{impl:>16}" for impl in IMPLS)
            + f"  {'vs Beam FnApi':>13} {'vs Beam default':>15} {'x DuckDB':>9}")
    lines = [head, "-" * len(head)]
    for r in rows_:
        cells = []
        for impl in IMPLS:
            m = r["results"].get(impl)
            if m is None:
                cells.append(f"{'-':>16}")
                continue
            t = f"{m['wall_s']:.2f} s" if m["wall_s"] else "failed"
            mark = {"ref": "", "yes": " =", "no": " !=", "n/a": " ~", "FAIL": " !"}[m["equal"]]
            cells.append(f"{t + mark:>16}")
        ra = r["ratios"]

        def fmt(key, target, faster=True):
            if key not in ra:
                return "-"
            ok = ra[key] >= target if faster else ra[key] <= target
            return f"{ra[key]:.1f}x{'' if ok else '*'}"

        lines.append(f"Q{r['query']:<5}" + "".join(cells)
                     + f"  {fmt('speedup_vs_beam_fnapi', TARGETS['beam_fnapi']):>13}"
                     + f" {fmt('speedup_vs_beam_direct', TARGETS['beam_direct']):>15}"
                     + f" {fmt('time_vs_duckdb', TARGETS['duckdb'], faster=False):>9}")
    lines.append("= equal to hybridflow's output; ~ not comparable (see NOT_COMPARABLE); != differs; "
                 "* misses the target (>=10x Beam FnApi, >=5x Beam default, <=3x DuckDB)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=EVENT_RATE, help="events per second of event time")
    parser.add_argument("--queries", default="0,1,2,3,4,5,7,8")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation and query (the median counts)")
    parser.add_argument("--beam-repeat", type=int, default=None,
                        help="runs of Beam's queries (default: --repeat); one takes minutes per million bids")
    parser.add_argument("--work", default="bench/data/nexmark-out")
    parser.add_argument("--results", default="bench/results")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    data = str(ROOT / "bench" / "data" / "nexmark" / f"b{args.bids}-r{args.rate}")
    print(f"nexmark events with {args.bids} bids ({data}) ...", flush=True)
    generate(args.bids, data, rate=args.rate)
    impls = args.impls.split(",")
    beam_repeat = args.beam_repeat or args.repeat
    results = [run_query(int(q), data, ROOT / args.work, impls, args.repeat, beam_repeat)
               for q in args.queries.split(",")]
    text = table(results)
    print()
    print(text)
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join([os.path.basename(PY), "-m", "bench.nexmark.run", *(argv or sys.argv[1:])]),
              "bids": args.bids, "rate": args.rate,
              "timing": f"whole-process wall time, median of {args.repeat} runs per implementation and query "
                        f"({beam_repeat} of Beam's)",
              "queries": results, "table": text}
    out = ROOT / args.results
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"nexmark-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")
    bad = any(m["equal"] in ("no", "FAIL") for r in results for m in r["results"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
