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
    python -m bench.streaming --rate 5000 --duration 90 --runner flink --source kafka
    python -m bench.streaming --rate 5000 --duration 1800 --runner flink --report_every 300   # make soak

``--source kafka`` reads the stream from a real local Kafka broker (two
partitions) instead of the in-pipeline generator: a producer *process*
outside the pipeline writes the same synthetic transactions at the rate, each
with its event time as the Kafka timestamp, and the pipeline reads
``kafka://...`` through Beam's cross-language Kafka IO (the provisioned
expansion service). The job is cancelled once the producer has finished and
the alerts of the stream have come out (a Kafka read never ends by itself).

A rate is *sustained* when, after start-up (the first events wait for the
card-profile side input built from the 40k-record history, then the backlog
is worked off), per-transaction alert latency settles at p99 <= 10 s and
stays there without growing until the final drain (when the watermark jumps
to the end of time and every open window fires); see ``steady_state``. The
wall time of a run is not a rate: it includes start-up and the drain.

Each rate runs as a separate process (wall time, peak RSS and the RSS every
5 s of its process tree and of each process in it: the launcher with its
LOOPBACK Python workers, Prism or the Flink job server, the Kafka broker,
expansion service and producer); memory while the stream flows is summarised
as a least-squares slope in MiB per minute per process (flat memory: a slope
near 0 over a long run). Velocity alerts are reported apart, as latency from
the end of their window (their event time). ``--report_every S`` adds latency
and memory per S seconds of the stream (the soak report). A
run that has not finished ``--timeout`` seconds after it started is
cancelled and reported as not sustained. The summary goes to
``bench/results/streaming-<runner>-<time>.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import apache_beam as beam

RUNNERS = {
    # None: the runner profile's flags, as `hybridflow run --profile NAME` uses them
    # (prism: LOOPBACK, no SDF splits of stateful bundles; flink: the Flink 1.19
    # mini-cluster with the Java 17 opens streaming needs; both: a job server
    # timeout long enough for runs of more than 5 minutes)
    "prism": None,
    "prism-cache": ["--max_cache_memory_usage_mb=256"],
    # Flink as a user runs it: checkpoints every 10 s (exactly-once state); flink-nocheckpoint
    # measures what they cost
    "flink": ["--checkpointing_interval=10000"],
    "flink-nocheckpoint": None,
}


def _runner_flags(name: str) -> list:
    from hybridflow.runners_config import load_profile

    profile = name.split("-")[0]
    return [f for f in load_profile(profile).flags() if not f.startswith("--mode")] + (RUNNERS[name] or [])


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


def steady_state(rows, duration: float) -> dict:
    """Transaction-alert latency per tenth of the stream (by event time) and
    the steady-state verdict. Start-up delays the first events (they wait for
    the card-profile side input built from the history, then the backlog is
    worked off); the last tenth includes the final drain. The run *caught up*
    at the first tenth from which every tenth up to the ninth has latency
    p99 <= 10 s; the rate is *sustained* if it caught up by the eighth tenth
    (two tenths of steady state at least) and latency does not grow there
    (p50 of the ninth tenth at most twice the first steady tenth's + 1 s)."""
    tx = sorted((event, lat) for rule, event, lat in rows if rule != "velocity")
    if not tx:
        return {"sustained": False, "caught_up_after_s": None, "latency_by_tenth": []}
    t0 = tx[0][0]
    tenths = []
    for k in range(10):
        lats = [lat for event, lat in tx if k * duration / 10 <= event - t0 < (k + 1) * duration / 10]
        tenths.append({"from_s": round(k * duration / 10, 1), "count": len(lats),
                       "p50": percentile(lats, 0.5), "p99": percentile(lats, 0.99)})
    ok = [t["p99"] is not None and t["p99"] <= 10 for t in tenths[:9]]
    caught = next((k for k in range(9) if all(ok[k:])), None)
    result = {"caught_up_after_s": None if caught is None else tenths[caught]["from_s"], "latency_by_tenth": tenths}
    if caught is None or caught > 7:
        return {"sustained": False, **result}
    lats = [lat for event, lat in tx if caught * duration / 10 <= event - t0 < 0.9 * duration]
    first, last = tenths[caught]["p50"], tenths[8]["p50"]
    return {"sustained": last <= 2 * first + 1,
            "steady_state_latency_s": {"p50": percentile(lats, 0.5), "p99": percentile(lats, 0.99),
                                       "count": len(lats)}, **result}


def rss_trend(timeline, start: float, stop: float) -> dict:
    """RSS of the process tree between ``start`` and ``stop`` seconds of the
    run: first and last sample and the least-squares slope in MiB per minute."""
    points = [(t, mib) for t, mib in timeline if start <= t <= stop]
    if len(points) < 3:
        return {}
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    slope = sum((t - mt) * (m - mm) for t, m in points) / var if var else 0.0
    return {"from_s": points[0][0], "to_s": points[-1][0], "first_mib": points[0][1], "last_mib": points[-1][1],
            "max_mib": max(m for _, m in points), "slope_mib_per_min": round(slope * 60, 2)}


SYNTHETIC = "seed=7&population=42&cards=2000&fraud=0.01&disorder=0&late=0&malformed=0.01"


def _kafka_source(args, stack):
    """Starts a broker, the Kafka expansion service, a 2-partition topic and the producer
    process; returns (input URI, extra pipeline flags, producer process)."""
    import subprocess
    import sys

    from hybridflow.testing.services.kafka import KafkaBroker, KafkaExpansionService, create_topic

    broker = stack.enter_context(KafkaBroker())
    expansion = stack.enter_context(KafkaExpansionService())
    topic = create_topic(broker.bootstrap, "transactions", partitions=2)
    producer = subprocess.Popen([sys.executable, "-m", "bench.kafka_producer", "--bootstrap", broker.bootstrap,
                                 "--topic", topic, "--rate", f"{args.rate:g}", "--duration", f"{args.duration:g}",
                                 "--params", SYNTHETIC])
    stack.callback(lambda: producer.poll() is None and producer.kill())
    return (f"kafka://{broker.bootstrap}/{topic}", [f"--kafka_expansion_service={expansion.address}"], producer)


def run_one(args):
    import contextlib

    from hybridflow import get_pipeline
    from hybridflow.io.uri import parse_uri
    from hybridflow.metrics import query_counters
    from hybridflow.pipelines.fraud import SyntheticTransactions
    from hybridflow.pipelines.fraud.pipeline import DEFAULT_STREAMING_HISTORY

    timeout = args.timeout or args.duration + 240
    with contextlib.ExitStack() as stack:
        producer = None
        if args.source == "kafka":
            uri, flags, producer = _kafka_source(args, stack)
            duration = []  # a Kafka read is unbounded: the run is cancelled below
        else:
            uri = f"synthetic://transactions?rate={args.rate:g}&{SYNTHETIC}"
            flags, duration = [], [f"--duration={args.duration:g}"]
        spec = get_pipeline("fraud")
        options = spec.options([*_runner_flags(args.runner), *flags, "--mode=streaming", f"--input={uri}",
                                *duration, f"--output={args.out}/files"])
        p = beam.Pipeline(options=options)
        outputs = spec.build(p, options)
        latency_dir = os.path.join(args.out, "latency")
        outputs["alerts"] | "AlertLatency" >> beam.ParDo(_AlertLatency(latency_dir))
        started = time.time()
        result = p.run()
        if producer is None:
            state = result.wait_until_finish(duration=int(timeout * 1000))
        else:
            history = SyntheticTransactions.from_params(parse_uri(DEFAULT_STREAMING_HISTORY).params).count
            state = _wait_for_kafka_stream(result, producer, history + int(args.rate * args.duration), started,
                                           timeout)
        finished = str(state).upper().endswith("DONE") or (producer is not None and state == "STREAM_DONE")
        if not str(state).upper().endswith("DONE"):
            result.cancel()
        wall = time.time() - started
        counters = query_counters(result)
    rows = _latency_rows(latency_dir)
    per_txn = [lat for rule, _, lat in rows if rule != "velocity"]
    # velocity alerts of windows that end after the stream stops fire when the
    # watermark jumps to the end of time: only windows that closed while events flowed count
    stream_end = max((event for rule, event, _ in rows if rule != "velocity"), default=started)
    velocity = [lat for rule, event, lat in rows if rule == "velocity" and event <= stream_end]
    steady = steady_state(rows, args.duration)
    summary = {
        "runner": args.runner, "source": args.source, "rate": args.rate, "duration_s": args.duration,
        "wall_s": round(wall, 1), "finished": finished, "pipeline_started_epoch": started,
        "records_read": counters.get("records_read"),
        "expected_stream_records": int(args.rate * args.duration),
        "alerts": len(rows),
        "transaction_alert_latency_s": {"p50": percentile(per_txn, 0.5), "p99": percentile(per_txn, 0.99),
                                        "count": len(per_txn)},
        # a velocity alert's event time is its window's end: this is the delay from the window's end
        "velocity_alert_latency_from_window_end_s": {
            "p50": percentile(velocity, 0.5), "p99": percentile(velocity, 0.99), "count": len(velocity)},
        **steady,
    }
    if args.report_every:
        summary["latency_by_period"] = latency_by_period(rows, args.report_every)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


def _latency_rows(latency_dir):
    rows = []
    for path in glob.glob(os.path.join(latency_dir, "*.jsonl")):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.endswith("\n")]
    rows.sort(key=lambda r: r[1])
    return rows


def _wait_for_kafka_stream(result, producer, expected_reads, started, timeout):
    """Waits until the producer is done and the job has read every record (its
    ``records_read`` metric, history included, reaches ``expected_reads``), then 10 s
    more for the last alerts; returns ``STREAM_DONE``, or the job's state if it ended."""
    from hybridflow.metrics import query_counters

    read_all_at = None
    while time.time() - started < timeout:
        state = str(result.state)
        if state.upper().endswith(("DONE", "FAILED", "CANCELLED")):
            return state
        if read_all_at is None and producer.poll() is not None:
            try:
                if query_counters(result).get("records_read") >= expected_reads:
                    read_all_at = time.time()
            except Exception:  # noqa: BLE001 - metrics not available yet; ask again
                pass
        if read_all_at is not None and time.time() - read_all_at >= 10:
            return "STREAM_DONE"
        time.sleep(2)
    return "TIMEOUT"


def latency_by_period(rows, period: float) -> list:
    """Transaction-alert latency per ``period`` seconds of the stream (by event time)."""
    tx = [(event, lat) for rule, event, lat in rows if rule != "velocity"]
    if not tx:
        return []
    t0 = min(event for event, _ in tx)
    out = []
    for k in range(int(max(event for event, _ in tx) - t0) // int(period) + 1):
        lats = [lat for event, lat in tx if k * period <= event - t0 < (k + 1) * period]
        out.append({"from_s": k * period, "count": len(lats), "p50": percentile(lats, 0.5),
                    "p99": percentile(lats, 0.99)})
    return out


def reanalyse(path: str, work=None) -> int:
    """Rewrites the steady-state fields of ``path`` from the latency files the
    runs left in the work directory (after a change of ``steady_state``)."""
    import pathlib

    from bench.run import ROOT

    report = json.loads(pathlib.Path(path).read_text())
    base = pathlib.Path(work or ROOT / "bench" / "data" / "streaming")
    for run in report["runs"]:
        if "rate" not in run or run.get("verdict") == "not run":  # failed before its summary, or skipped
            continue
        # work directories are <runner>-<source>-<rate> (results before --source: <runner>-<rate>)
        directory = base / f"{run['runner']}-{run.get('source', 'synthetic')}-{run['rate']:g}"
        if not directory.exists():
            directory = base / f"{run['runner']}-{run['rate']:g}"
        rows = _latency_rows(directory / "latency")
        for key in ("sustained", "caught_up_after_s", "steady_state_latency_s", "latency_by_tenth"):
            run.pop(key, None)
        run.update(steady_state(rows, run["duration_s"]))
        print(f"{run['runner']} {run['rate']:g}/s: sustained={run['sustained']} "
              f"caught up after {run['caught_up_after_s']} s, steady {run.get('steady_state_latency_s')}")
    report["reanalysed"] = "steady-state fields recomputed by bench.streaming --reanalyse"
    pathlib.Path(path).write_text(json.dumps(report, indent=2))
    return 0


def matrix(runners, sources, rates, run) -> list:
    """``run(runner, source, rate)`` for every runner and source, rates from low to
    high up to the first one not sustained (a ladder); the rates above it are
    listed with the verdict ``not run``."""
    runs = []
    for runner in runners:
        for source in sources:
            failed_at = None
            for rate in sorted(rates):
                if failed_at is not None:
                    runs.append({"runner": runner, "source": source, "rate": rate, "sustained": None,
                                 "verdict": "not run", "reason": f"{failed_at:g}/s was not sustained"})
                    print(f"  {runner} {source} {rate:g} events/s: not run ({runs[-1]['reason']})", flush=True)
                    continue
                runs.append(run(runner, source, rate))
                if not runs[-1].get("sustained"):
                    failed_at = rate
    return runs


def main(argv=None):
    import datetime
    import pathlib

    from bench.run import ROOT, machine, measure

    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, action="append")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--runner", choices=sorted(RUNNERS), action="append",
                        help="repeatable: a matrix of runners x sources x rates (default prism)")
    parser.add_argument("--source", choices=("synthetic", "kafka"), action="append",
                        help="the in-pipeline generator, or a local Kafka broker fed by a producer process "
                        "(repeatable; default synthetic)")
    parser.add_argument("--report_every", type=float, default=None,
                        help="also report latency and memory per this many seconds of the stream (soak)")
    parser.add_argument("--out", default=None, help="work directory (one run: the pipeline's own)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="cancel a run after this many seconds (default: duration + 240)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reanalyse", metavar="RESULTS_JSON",
                        help="recompute the steady-state figures of a results file from its runs' latency files")
    args = parser.parse_args(argv)
    if args.reanalyse:
        return reanalyse(args.reanalyse, args.out)
    if not args.rate:
        parser.error("--rate is required (events per second; repeatable)")
    runners, sources = args.runner or ["prism"], args.source or ["synthetic"]
    if args.child:
        args.rate, args.runner, args.source = args.rate[0], runners[0], sources[0]
        return run_one(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(args.out or ROOT / "bench" / "data" / "streaming")
    runs = matrix(runners, sources, args.rate,
                  lambda runner, source, rate: _run_child(args, runner, source, rate, work, measure))
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine(), "runs": runs,
              "latency": "wall clock when the alert reaches the sink minus its event time"}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"streaming-{'+'.join(runners)}-{'+'.join(sources)}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print("runner              source     rate/s  verdict        steady p50 / p99 s")
    for run in runs:
        steady = run.get("steady_state_latency_s") or {}
        print(f"{run['runner']:19s} {run['source']:10s} {run['rate']:7g}  {run['verdict']:13s}  "
              f"{steady.get('p50')} / {steady.get('p99')}")
    print(f"wrote {path.relative_to(ROOT)}")


def _run_child(args, runner: str, source: str, rate: float, work, measure) -> dict:
    """One rate of one runner and source in a child process, measured (RSS per process)."""
    import sys

    name = f"{runner}-{source}-{rate:g}"
    out = work / name
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "bench.streaming", "--child", "--rate", f"{rate:g}", "--duration",
           f"{args.duration:g}", "--runner", runner, "--source", source, "--out", str(out)]
    if args.timeout:
        cmd += ["--timeout", f"{args.timeout:g}"]
    if args.report_every:
        cmd += ["--report_every", f"{args.report_every:g}"]
    print(f"  {runner} {source} {rate:g} events/s for {args.duration:g} s ...", flush=True)
    m = measure(cmd, work / f"{name}.log", rss_every=5)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {
        "runner": runner, "source": source, "rate": rate, "duration_s": args.duration, "error": "no summary"}
    # memory while the stream flows: from a minute after the pipeline started (start-up and
    # the history's batch work done; services a Kafka run starts come before it) to the end of
    # the stream
    stream_start = summary.get("pipeline_started_epoch", m["started_epoch"]) - m["started_epoch"]
    stream_end = stream_start + args.duration
    # per process: from 5 minutes in on runs of 10 minutes or more (the issue's "after the first
    # 5 minutes"), else from a minute in
    settle = stream_start + (300 if args.duration >= 600 else 60)
    summary.update(process_wall_s=m["wall_s"], peak_rss_mib=m["peak_rss_mib"], exit_code=m["exit_code"],
                   load_avg_1m_before=m["load_avg_1m_before"], load_avg_1m_after=m["load_avg_1m_after"],
                   rss_while_streaming=rss_trend(m["rss_mib"], stream_start + 60, stream_end),
                   rss_while_streaming_by_process={
                       role: rss_trend(series, settle, stream_end)
                       for role, series in m["rss_mib_by_process"].items()},
                   rss_mib=m["rss_mib"], rss_mib_by_process=m["rss_mib_by_process"])
    if args.report_every:
        summary["memory_by_period"] = {
            role: [rss_trend(series, stream_start + k, stream_start + k + args.report_every)
                   for k in range(0, int(args.duration), int(args.report_every))]
            for role, series in m["rss_mib_by_process"].items()}
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rss_mib", "rss_mib_by_process")},
                     indent=2), flush=True)
    summary["verdict"] = ("sustained" if summary.get("sustained") else
                          "not sustained" if "sustained" in summary else "failed")
    return summary


if __name__ == "__main__":
    main()
