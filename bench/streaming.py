"""Streaming benchmark: the fraud scoring pipeline on a real streaming runner
(Prism, or Flink when its job server jar is provisioned) with the unbounded
synthetic source at a fixed rate for a fixed time.

Latency of an alert = the wall-clock time when it reaches the alert sink
(a DoFn that appends it to a local file and flushes) minus its event time.
Per-transaction alerts (z-score, new country) measure the whole path from
the event to the written alert; velocity alerts are due only when the
watermark passes their window's end (event time = window end), so their
latency is the watermark delay. The synthetic stream is generated in order
(``disorder=0&late=0``) so that source lateness does not count as pipeline
latency; 1 % of records are malformed (dead letters) as in batch.

    python -m bench.streaming --rate 1000 --rate 10000 --duration 60 --runner prism

Each rate runs as a separate process (wall time and peak RSS of its process
tree, Prism included, measured like the batch benchmarks); a run that has
not finished ``--timeout`` seconds after it started is cancelled and reported
as not sustained. The summary goes to ``bench/results/streaming-<time>.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import apache_beam as beam

RUNNERS = {
    "prism": ["--runner=PrismRunner", "--environment_type=LOOPBACK"],
    "prism-cache": ["--runner=PrismRunner", "--environment_type=LOOPBACK", "--max_cache_memory_usage_mb=256"],
    # the flink profile's flags (Flink 1.19 mini-cluster, LOOPBACK, the Java 17 opens streaming needs)
    "flink": None,
}


def _runner_flags(name: str) -> list:
    if RUNNERS[name] is None:
        from hybridflow.runners_config import load_profile

        return [f for f in load_profile(name).flags() if not f.startswith("--mode")]
    return RUNNERS[name]


class _AlertLatency(beam.DoFn):
    """Appends (rule, event time, seconds from event time to now) per alert."""

    def __init__(self, directory: str):
        self._directory = directory

    def setup(self):
        os.makedirs(self._directory, exist_ok=True)
        self._file = open(os.path.join(self._directory, f"latency-{os.getpid()}-{id(self)}.jsonl"), "a")

    def process(self, alert):
        now = time.time()
        event = alert.event_time.micros / 1e6
        self._file.write(json.dumps([alert.rule, event, now - event]) + "\n")
        self._file.flush()

    def teardown(self):
        self._file.close()


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def run_one(args):
    from hybridflow import get_pipeline
    from hybridflow.metrics import query_counters

    timeout = args.timeout or args.duration + 240
    uri = (f"synthetic://transactions?rate={args.rate:g}&seed=7&population=42&cards=2000"
           "&fraud=0.01&disorder=0&late=0&malformed=0.01")
    spec = get_pipeline("fraud")
    options = spec.options([*_runner_flags(args.runner), "--mode=streaming", f"--input={uri}",
                            f"--duration={args.duration:g}", f"--output={args.out}/files"])
    p = beam.Pipeline(options=options)
    outputs = spec.build(p, options)
    latency_dir = os.path.join(args.out, "latency")
    outputs["alerts"] | "AlertLatency" >> beam.ParDo(_AlertLatency(latency_dir))
    started = time.time()
    result = p.run()
    state = result.wait_until_finish(duration=int(timeout * 1000))
    finished = str(state).upper().endswith("DONE")
    if not finished:
        result.cancel()
    wall = time.time() - started
    counters = query_counters(result)
    rows = []
    for path in glob.glob(os.path.join(latency_dir, "*.jsonl")):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    rows.sort(key=lambda r: r[1])
    per_txn = [lat for rule, _, lat in rows if rule != "velocity"]
    # velocity alerts of windows that end after the stream stops fire when the
    # watermark jumps to the end of time: only windows that closed while events flowed count
    stream_end = max((event for rule, event, _ in rows if rule != "velocity"), default=started)
    velocity = [lat for rule, event, lat in rows if rule == "velocity" and event <= stream_end]
    half = len(per_txn) // 2
    summary = {
        "runner": args.runner, "rate": args.rate, "duration_s": args.duration, "wall_s": round(wall, 1),
        "finished": finished,
        "records_read_including_40k_history": counters.get("records_read"),
        "expected_stream_records": int(args.rate * args.duration),
        "transaction_alert_latency_p50_first_half_s": percentile(per_txn[:half], 0.5),
        "transaction_alert_latency_p50_second_half_s": percentile(per_txn[half:], 0.5),
        "alerts": len(rows),
        "transaction_alert_latency_s": {"p50": percentile(per_txn, 0.5), "p99": percentile(per_txn, 0.99),
                                        "count": len(per_txn)},
        "velocity_alert_latency_s": {"p50": percentile(velocity, 0.5), "p99": percentile(velocity, 0.99),
                                     "count": len(velocity)},
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


def main(argv=None):
    import datetime
    import pathlib
    import sys

    from bench.run import ROOT, machine, measure

    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, action="append", required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--runner", choices=sorted(RUNNERS), default="prism")
    parser.add_argument("--out", default=None, help="work directory (one run: the pipeline's own)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="cancel a run after this many seconds (default: duration + 240)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.rate = args.rate[0]
        return run_one(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(args.out or ROOT / "bench" / "data" / "streaming")
    runs = []
    for rate in args.rate:
        out = work / f"{args.runner}-{rate:g}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        out.mkdir(parents=True)
        cmd = [sys.executable, "-m", "bench.streaming", "--child", "--rate", f"{rate:g}", "--duration",
               f"{args.duration:g}", "--runner", args.runner, "--out", str(out)]
        if args.timeout:
            cmd += ["--timeout", f"{args.timeout:g}"]
        print(f"  {args.runner} {rate:g} events/s for {args.duration:g} s ...", flush=True)
        m = measure(cmd, work / f"{args.runner}-{rate:g}.log")
        summary_path = out / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"error": "no summary"}
        summary.update(process_wall_s=m["wall_s"], peak_rss_mib=m["peak_rss_mib"], exit_code=m["exit_code"],
                       load_avg_1m_before=m["load_avg_1m_before"])
        print(json.dumps(summary, indent=2), flush=True)
        runs.append(summary)
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine(), "runs": runs,
              "latency": "wall clock when the alert reaches the sink minus its event time"}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"streaming-{args.runner}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
