"""``make bench``: hybridflow vs idiomatic Beam vs DuckDB on the same files, in one run.

For each N: generate (once) N synthetic transactions as JSON lines and
Parquet, then run each benchmark as a separate process per implementation
and measure the whole process: wall time and peak resident memory (the
process and its children, sampled every 50 ms with psutil).

  aggregate  WindowedAggregate alone: 60 s fixed windows, count and sum of
             amount per card (after parsing/validation), JSON lines and Parquet
  fraud      the fraud batch scoring path: parse -> profiles -> enrich ->
             rules -> sliding 5 min / 1 min windows -> velocity -> Parquet

Each of hybridflow and DuckDB runs ``--repeat`` times (default 3) and the median
counts; idiomatic Beam runs once (minutes per million events). A timing counts only if the implementation's results equal hybridflow's:
counts, keys and ids exactly, floats within 1e-9 relative (idiomatic Beam and
DuckDB add floats in no fixed order; hybridflow's are exactly rounded).
Results go to bench/results/batch-<time>.json; the table is printed.

    python -m bench.run --n 1000000          # what `make bench` runs (BENCH_N)
    python -m bench.run --n 100000 --n 1000000 --n 5000000 --idiomatic-max-n 1000000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time

from bench.compare import compare, read_rows
from bench.data import ensure_data

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
HYBRIDFLOW_CLI = str(pathlib.Path(PY).with_name("hybridflow"))

AGGREGATE_COLUMNS = {"aggregates": ["card_id", "window_start", "n", "total"]}
FRAUD_COLUMNS = {
    "alerts": ["alert_id", "rule", "key", "value", "event_time"],
    "aggregates": ["card_id", "window_start", "window_end", "txn_count", "total_amount", "max_amount", "countries"],
    "profiles": ["card_id", "txn_count", "amount_mean", "amount_stddev", "usual_countries", "last_seen"],
}


def commands(bench: str, impl: str, source: str, out: str) -> list[str]:
    if bench == "aggregate":
        module = {
            "hybridflow": "bench.aggregate_hybridflow",
            "idiomatic_beam": "bench.baselines.aggregate_beam",
            "duckdb": "bench.baselines.aggregate_duckdb",
        }[impl]
        return [PY, "-m", module, "--input", source, "--output", out]
    if impl == "hybridflow":
        return [HYBRIDFLOW_CLI, "run", "fraud", "--mode", "batch", "--input", source, "--output", out,
                "--output_format", "parquet", "--runner", "FnApiRunner", "--overwrite"]  # --repeat reruns into out
    module = {"idiomatic_beam": "bench.baselines.fraud_beam", "duckdb": "bench.baselines.fraud_duckdb"}[impl]
    return [PY, "-m", module, "--input", source, "--output", out]


def process_role(proc) -> str:
    """A stable name for a process of a benchmark's tree (per-process memory series)."""
    try:
        cmdline = proc.cmdline()
    except Exception:  # noqa: BLE001 - gone, or no access: name it by pid
        return f"pid-{proc.pid}"
    text = " ".join(cmdline)
    for needle, role in (("prism", "prism"), ("FlinkJobServerDriver", "flink-job-server"),
                         ("kafka.Kafka", "kafka-broker"), ("ExpansionService", "kafka-expansion"),
                         ("ExternalWorkerService", "java-worker-pool"), ("bench.kafka_producer", "kafka-producer"),
                         ("sdk_worker_main", "python-worker"), ("bench.streaming", "launcher")):
        if needle in text:
            return role
    return (cmdline[0].rsplit("/", 1)[-1] if cmdline else "process") + f"-{proc.pid}"


def measure(cmd: list[str], log_path: pathlib.Path, rss_every: float = 0) -> dict:
    """Runs ``cmd``; wall seconds, peak RSS (MiB) of its process tree, exit code
    (and with ``rss_every``, the tree's RSS every that many seconds: ``rss_mib``
    as [seconds, MiB] pairs, and each process's: ``rss_mib_by_process``, keyed
    by :func:`process_role`)."""
    import psutil

    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    load_before = os.getloadavg()[0]
    started_epoch = time.time()
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        parent = psutil.Process(proc.pid)
        peak = 0
        timeline = []
        next_sample = started
        procs: list = [parent]
        roles: dict = {}
        by_process: dict = {}
        next_scan = started
        while proc.poll() is None:
            rss = 0
            now = time.perf_counter()
            sizes = {}
            try:
                # the process list is rescanned twice a second: scanning /proc
                # every sample cost the measured process up to a tenth of a core
                if now >= next_scan:
                    procs = [parent] + parent.children(recursive=True)
                    next_scan = now + 0.5
                for p in procs:
                    try:
                        sizes[p.pid] = p.memory_info().rss
                    except psutil.Error:
                        continue
                rss = sum(sizes.values())
                peak = max(peak, rss)
            except psutil.Error:
                pass
            if rss_every and now >= next_sample:
                t = round(now - started, 1)
                timeline.append([t, round(rss / 2**20, 1)])
                for p in procs:
                    if p.pid in sizes:
                        if p.pid not in roles:
                            role = process_role(p)
                            roles[p.pid] = role if role not in roles.values() else f"{role}-{p.pid}"
                        role = roles[p.pid]
                        by_process.setdefault(role, []).append([t, round(sizes[p.pid] / 2**20, 1)])
                next_sample = now + rss_every
            time.sleep(0.05)
    wall = time.perf_counter() - started
    result = {"wall_s": round(wall, 3), "peak_rss_mib": round(peak / 2**20, 1), "exit_code": proc.returncode,
              "started_epoch": started_epoch,
              "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0]}
    if rss_every:
        result["rss_mib"] = timeline
        result["rss_mib_by_process"] = by_process
    return result


def run_benchmark(bench: str, fmt: str, n: int, data: dict, impls: list[str], work: pathlib.Path,
                  repeat: int = 1) -> dict:
    source = data[fmt]
    columns = AGGREGATE_COLUMNS if bench == "aggregate" else FRAUD_COLUMNS
    results: dict = {}
    outputs: dict = {}
    for impl in impls:
        out = work / f"{bench}-{fmt}-n{n}" / impl
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        print(f"  {bench:<9} {fmt:<7} n={n:<8} {impl:<15} ...", end="", flush=True)
        runs = repeat if impl != "idiomatic_beam" else 1
        samples = [measure(commands(bench, impl, source, str(out)), out.parent / f"{impl}.log") for _ in range(runs)]
        ok = [x for x in samples if x["exit_code"] == 0]
        # the median run (by wall time) of the successful ones; every sample is kept
        m = dict(sorted(ok, key=lambda x: x["wall_s"])[len(ok) // 2] if ok else samples[-1])
        m["samples"] = [{k: x[k] for k in ("wall_s", "peak_rss_mib", "load_avg_1m_before")} for x in samples]
        m["events_per_s"] = round(n / m["wall_s"]) if m["exit_code"] == 0 else None
        walls = ", ".join(f"{x['wall_s']:.1f}" for x in samples)
        print(f" {m['wall_s']:8.2f} s  {m['peak_rss_mib']:8.1f} MiB  load {m['load_avg_1m_before']:.1f}"
              + (f"  (median of {walls})" if len(samples) > 1 else "")
              + ("" if m["exit_code"] == 0 else f"  FAILED (exit {m['exit_code']}, see {out.parent / (impl + '.log')})"))
        results[impl] = m
        if m["exit_code"] == 0:
            outputs[impl] = {name: read_rows(f"{out}/{name}*.parquet", cols) for name, cols in columns.items()}
    reference = outputs.get("hybridflow")
    for impl, m in results.items():
        if impl == "hybridflow" or reference is None or impl not in outputs:
            m["equal_to_hybridflow"] = impl == "hybridflow" and reference is not None
            continue
        checks = {name: compare(reference[name], outputs[impl][name]) for name in columns}
        m["equal_to_hybridflow"] = all(ok for ok, _ in checks.values())
        m["comparison"] = {name: why for name, (ok, why) in checks.items()}
        if not m["equal_to_hybridflow"]:
            print(f"    {impl}: results differ from hybridflow: {m['comparison']}")
    if reference is not None:
        results["hybridflow"]["rows"] = {name: rows.num_rows for name, rows in reference.items()}
    hf = results.get("hybridflow", {})
    ratios = {}
    ok = hf.get("exit_code") == 0
    beam_run, duck = results.get("idiomatic_beam"), results.get("duckdb")
    if ok and beam_run and beam_run.get("equal_to_hybridflow"):
        ratios["speedup_vs_idiomatic_beam"] = round(beam_run["wall_s"] / hf["wall_s"], 2)
    if ok and duck and duck.get("equal_to_hybridflow"):
        ratios["time_vs_duckdb"] = round(hf["wall_s"] / duck["wall_s"], 2)
    return {"benchmark": bench, "format": fmt, "n": n, "results": results, "speedup": ratios}


def table(rows: list[dict]) -> str:
    head = (f"{'benchmark':<10} {'input':<8} {'N':>9} {'implementation':<15} {'wall s':>8} {'events/s':>10} "
            f"{'peak MiB':>9} {'equal':>6}   hybridflow")
    lines = [head, "-" * len(head)]
    for r in rows:
        first = True
        for impl, m in r["results"].items():
            ratio = ""
            if first:
                sp = r["speedup"]
                ratio = "  ".join(
                    ([f"{sp['speedup_vs_idiomatic_beam']:.1f}x faster than idiomatic Beam"]
                     if "speedup_vs_idiomatic_beam" in sp else [])
                    + ([f"{sp['time_vs_duckdb']:.1f}x DuckDB's time"] if "time_vs_duckdb" in sp else [])
                )
            eq = "yes" if m.get("equal_to_hybridflow") else ("ref" if impl == "hybridflow" else "NO")
            if impl == "hybridflow":
                eq = "ref" if m.get("exit_code") == 0 else "FAIL"
            lines.append(
                f"{r['benchmark'] if first else '':<10} {r['format'] if first else '':<8} "
                f"{r['n'] if first else '':>9} {impl:<15} {m['wall_s']:>8.2f} {m.get('events_per_s') or 0:>10,} "
                f"{m['peak_rss_mib']:>9.1f} {eq:>6}   {ratio}"
            )
            first = False
    return "\n".join(lines)


def machine() -> dict:
    import psutil

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import apache_beam
    import duckdb
    import pyarrow

    return {"cpu": cpu, "logical_cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "apache_beam": apache_beam.__version__,
            "pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__, "os": platform.platform()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="events (repeatable); default 1,000,000")
    parser.add_argument("--benchmarks", default="aggregate,fraud")
    parser.add_argument("--formats", default="jsonl,parquet", help="aggregate inputs (fraud reads JSON lines)")
    parser.add_argument("--idiomatic-max-n", type=int, default=1_000_000,
                        help="skip the idiomatic Beam baseline above this N (it takes minutes per million)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of hybridflow and DuckDB per benchmark (the median counts); idiomatic Beam runs once")
    parser.add_argument("--work", default="bench/data/out")
    parser.add_argument("--results", default="bench/results")
    args = parser.parse_args(argv)
    ns = args.n or [1_000_000]
    work = ROOT / args.work
    rows = []
    started = datetime.datetime.now(datetime.timezone.utc)
    for n in ns:
        print(f"data for n={n} ...", flush=True)
        data = ensure_data(n, str(ROOT / "bench" / "data"))
        impls = ["hybridflow", "duckdb"] + (["idiomatic_beam"] if n <= args.idiomatic_max_n else [])
        for bench in args.benchmarks.split(","):
            formats = args.formats.split(",") if bench == "aggregate" else ["jsonl"]
            for fmt in formats:
                rows.append(run_benchmark(bench, fmt, n, data, impls, work, args.repeat))
    text = table(rows)
    print()
    print(text)
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join([os.path.basename(PY), "-m", "bench.run", *(argv or sys.argv[1:])]),
              "tolerance": "counts, keys, ids exact; floats within 1e-9 relative",
              "timing": f"whole-process wall time; hybridflow and DuckDB: median of {args.repeat} runs, "
                        "idiomatic Beam: one run; peak RSS of the process tree sampled every 50 ms",
              "runs": rows, "table": text}
    results = ROOT / args.results
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"batch-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")
    failed = any(m.get("exit_code") for r in rows for m in r["results"].values())
    unequal = any(not m.get("equal_to_hybridflow") for r in rows for m in r["results"].values())
    return 1 if failed or unequal else 0


if __name__ == "__main__":
    sys.exit(main())
