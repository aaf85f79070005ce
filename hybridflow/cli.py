"""The ``hybridflow`` command.

::

    hybridflow list                       installed pipelines
    hybridflow describe PIPELINE          parameters, defaults, modes
    hybridflow profiles                   runner profiles
    hybridflow run PIPELINE [--mode batch|streaming|hybrid] [--profile NAME|PATH]
                   [pipeline params] [any Beam flag]
    hybridflow generate PIPELINE --out DIR [--count N]
                                          its sample history as JSON lines
    hybridflow new NAME [--dir DIR]       scaffold a pipeline package
    hybridflow template build|launch PIPELINE ...  Dataflow flex templates
                                          (see hybridflow.flex.cli)
    hybridflow report PIPELINE --input DIR --out report.html
                                          HTML report of a batch run's outputs
    hybridflow airflow-dag|k8s|cron-line PIPELINE ...  scheduling: an Airflow DAG,
                                          Kubernetes manifests, a crontab line
                                          (see hybridflow.orchestration.cli)

PIPELINE is an installed pipeline's name (``hybridflow list``; entry points
of the group ``hybridflow.pipelines``), ``module:attr`` or
``path/to/file.py[:attr]``; ``--pipeline REF`` before the command loads one
more for any command (``hybridflow --pipeline ./mine.py list``).

Every failure prints one line on stderr naming the problem and the fix;
the full detail (tracebacks, Beam's logs) is in the command's log file
(:mod:`hybridflow.logs`), which the line names when it holds more. Exit
codes: 2 usage errors (flags, missing inputs, unusable output locations), 1
a failed job, 3 a job that finished past ``--deadline``, 4 a job whose dead
letters exceeded ``--max_dead_letter_ratio``, 130 interrupted (Ctrl-C,
SIGTERM). A run that does not finish publishes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import signal
import sys
import threading
from typing import Optional, Sequence

from hybridflow.errors import HybridflowError, UsageError, report
from hybridflow.redaction import redact_logs

__all__ = ["main"]

PROG = "hybridflow"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line UsageErrors (exit code 2)."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Hybrid batch + streaming pipelines on Apache Beam.", allow_abbrev=False)
    parser.add_argument(
        "--log_level",
        default=None,
        help="Also show every logger's records from this level on in the terminal (DEBUG, INFO, WARNING ...); "
        "by default only hybridflow's warnings; everything from INFO on is in the command's log file.",
    )
    parser.add_argument(
        "--pipeline", action="append", default=[], metavar="REF", dest="extra_pipelines",
        help="Load a pipeline that is not installed (module:attr or path/to/file.py[:attr]) for this command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser("list", help="List registered pipelines.")
    describe = sub.add_parser("describe", help="Show a pipeline's parameters and modes.")
    describe.add_argument("pipeline")
    sub.add_parser("profiles", help="List runner profiles.")
    run = sub.add_parser(
        "run",
        help="Run a pipeline; unknown flags pass through to Beam's PipelineOptions.",
        allow_abbrev=False,
        add_help=False,
    )
    run.add_argument("pipeline")
    run.add_argument("--profile", default="direct", help="Runner profile name or YAML path (default: direct).")
    run.add_argument("-h", "--help", action="store_true")
    gen = sub.add_parser(
        "generate", help="Write a pipeline's default batch inputs (its synthetic:// streams) as JSON lines."
    )
    gen.add_argument("pipeline")
    gen.add_argument("--out", required=True, help="Output directory.")
    gen.add_argument("--count", type=int, default=None, help="Records per stream (default: the pipeline's).")
    gen.add_argument("--shards", type=int, default=4)
    gen.add_argument(
        "--params", default="", help="More synthetic:// parameters for every stream, e.g. 'seed=1&malformed=0.05'."
    )
    new = sub.add_parser("new", help="Scaffold a pipeline package (records, generator, build, tests, entry point).")
    new.add_argument("name", help="The pipeline's name: a Python identifier, also the package's.")
    new.add_argument("--dir", default=None, help="Where to write it (default: ./NAME).")
    from hybridflow.flex.cli import add_template_parser

    add_template_parser(sub)
    from hybridflow.orchestration.cli import add_parsers

    add_parsers(sub)
    report = sub.add_parser("report", help="Render an HTML report (with plots) of a batch run's outputs.")
    report.add_argument("pipeline")
    report.add_argument("--input", required=True, help="The run's --output directory (JSONL or Parquet outputs).")
    report.add_argument("--out", required=True, help="The HTML file to write.")
    report.add_argument("--metrics", default=None, help="The run's --metrics_json file (default: <input>/metrics.json if present).")
    return parser


def _cmd_list(out) -> int:
    from hybridflow.pipelines import list_pipelines

    specs = list_pipelines()
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name:<{width}}  {spec.description}", file=out)
    return 0


def _origin(spec) -> str:
    origin = spec.origin
    if origin is None or origin.kind == "registered":
        return "registered from Python"
    where = {"entry_point": "entry point", "module": "module", "file": "file"}[origin.kind]
    installed = f" of {origin.distribution} {origin.version}" if origin.distribution else ""
    return f"{where} {origin.ref}{installed}"


def _describe(spec) -> str:
    from hybridflow.options import HybridflowOptions, parser_actions

    lines = [f"{spec.name}: {spec.description}", ""]
    lines.append(f"from: {_origin(spec)}")
    lines.append(f"modes: {', '.join(spec.modes)} (default {spec.default_mode})")
    lines.append("")
    lines.append("parameters:")

    def row(action, default_text):
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        kind = "choice of " + "|".join(map(str, action.choices)) if action.choices else (
            "flag" if action.nargs == 0 else getattr(action.type, "__name__", "str")
        )
        kind = {"duration_arg": "duration", "bool_arg": "true|false", "ratio_arg": "0..1|off"}.get(kind, kind)
        return f"  {flag:<24} {kind:<22} default {default_text}\n      {action.help or ''}"

    common = [a for a in parser_actions(HybridflowOptions) if a.dest in spec.common]
    for action in common:
        per_mode = {m: (spec.defaults.get(m) or {}).get(action.dest) for m in spec.modes}
        if action.dest == "mode":
            text = spec.default_mode
        elif len(set(map(str, per_mode.values()))) == 1:
            text = str(next(iter(per_mode.values())))
        else:
            text = "; ".join(f"{m}: {v}" for m, v in per_mode.items())
        lines.append(row(action, text))
    if spec.options_class is not None:
        for action in parser_actions(spec.options_class):
            lines.append(row(action, action.default))
    lines.append("")
    lines.append("monitoring (any pipeline; --metrics_port and --metrics-port are the same flag):")
    from hybridflow.options import MonitoringOptions

    for action in parser_actions(MonitoringOptions):
        lines.append(row(action, action.default))
    lines.append("")
    streams = ", ".join(f"synthetic://{g.stream}" for g in spec.generators)
    if streams:
        lines.append(f"generators: {streams} (`hybridflow generate {spec.name}` writes the default batch inputs)")
    lines.append("outputs and inputs (any pipeline; see docs/guarantees.md):")
    from hybridflow.io.options import ConnectorOptions
    from hybridflow.options import RunOptions

    for action in parser_actions(RunOptions) + [a for a in parser_actions(ConnectorOptions) if a.dest == "allow_empty"]:
        default = "0.5 in batch, off in streaming" if action.dest == "max_dead_letter_ratio" else action.default
        lines.append(row(action, default))
    lines.append("")
    lines.append("runner flags: any Beam pipeline option (--runner, --parallelism, --temp_location ...);")
    lines.append("profiles: " + _profile_names() + " (--profile NAME or a YAML path)")
    return "\n".join(lines)


def _profile_names() -> str:
    from hybridflow.runners_config import list_profiles

    return ", ".join(list_profiles())


def _cmd_describe(name: str, out) -> int:
    from hybridflow.pipelines import get_pipeline

    print(_describe(get_pipeline(name)), file=out)
    return 0


def _cmd_profiles(out) -> int:
    from hybridflow.runners_config import list_profiles, load_profile

    for name in list_profiles():
        profile = load_profile(name)
        print(f"{name:<9} {profile.description}", file=out)
    return 0


def _cmd_run(args, beam_flags: Sequence[str], out) -> int:
    from hybridflow.pipelines import get_pipeline
    from hybridflow.pipelines.run import run_pipeline
    from hybridflow.runners_config import load_profile

    spec = get_pipeline(args.pipeline)
    if args.help:
        print(_describe(spec), file=out)
        return 0
    profile = load_profile(args.profile)
    options = spec.options(beam_flags, profile.flags())
    profile.check_required(options)
    summary = run_pipeline(spec, options)
    print(summary.render(), file=out)
    _print_top_alerts(summary, out)
    return summary.exit_code


class _Stop:
    """SIGINT and SIGTERM stop a run the same way: the first one raises
    KeyboardInterrupt in the main thread (Python then exits normally, so the
    job server and workers Beam started for the run, a Flink JVM or Prism, are
    stopped by Beam's exit handlers instead of being left running); later ones
    are ignored while the run cleans up."""

    def __init__(self):
        self.stopping = False
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        self.stopping = True  # cleaning up: no more interrupts
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _print_top_alerts(summary, out, limit: int = 5) -> None:
    """Prints the first alerts of the published local JSON-lines alert files of a run."""
    from hybridflow.pipelines.outputs import SUCCESS, published_files

    alerts = []
    for marker in summary.published:
        if "://" in marker or alerts:  # the first local copy (an output may have several sinks)
            continue
        directory = marker[: -len(SUCCESS)].rstrip("/") or "."
        for path in published_files(directory, "alerts"):
            if path.endswith(".jsonl"):
                with open(path, encoding="utf-8") as f:
                    alerts.extend(json.loads(line) for line in f if line.strip())
    if not alerts:
        return
    alerts.sort(key=lambda a: (a["event_time"], a["rule"], a["key"]))
    print(f"  first {min(limit, len(alerts))} of {len(alerts)} alerts:", file=out)
    for a in alerts[:limit]:
        print(f"    {a['event_time']}  {a['message']}", file=out)


def _cmd_generate(args, out) -> int:
    import urllib.parse

    from hybridflow.io.synthetic import generate_records, synthetic_stream
    from hybridflow.io.uri import parse_uri
    from hybridflow.pipelines import get_pipeline

    if (args.count is not None and args.count < 0) or args.shards < 1:
        raise UsageError("--count must be >= 0 and --shards >= 1")
    spec = get_pipeline(args.pipeline)
    inputs = {flag: uri for flag, uri in spec.default_inputs("batch").items() if parse_uri(uri).scheme == "synthetic"}
    if not inputs:
        raise UsageError(f"pipeline {spec.name!r} reads no synthetic:// input by default: nothing to generate")
    extra = dict(urllib.parse.parse_qsl(args.params, keep_blank_values=True))
    directory = pathlib.Path(args.out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for flag, uri in inputs.items():
            endpoint = parse_uri(uri)
            params = {**endpoint.params, **extra, **({"count": str(args.count)} if args.count is not None else {})}
            config = synthetic_stream(endpoint.netloc).from_params(params)
            count = config.record_count
            if count is None:
                raise UsageError(f"--{flag} default {uri} is endless: give --count N")
            prefix = config.stream if flag == "input" else flag  # two inputs may read the same stream
            per_shard = -(-count // args.shards)
            for shard in range(args.shards):
                first, last = shard * per_shard, min((shard + 1) * per_shard, count)
                path = directory / f"{prefix}-{shard:05d}-of-{args.shards:05d}.jsonl"
                with open(path, "w", encoding="utf-8") as f:
                    for line in generate_records(config, first, last):
                        f.write(line + "\n")
            print(f"wrote {count} {config.stream} records to {directory}/{prefix}-*.jsonl (--{flag})", file=out)
    except OSError as exc:
        from hybridflow.pipelines.outputs import location_error

        raise location_error(str(directory), "the generated records (--out)", exc) from exc
    return 0


def _cmd_new(args, out) -> int:
    from hybridflow.pipelines.scaffold import write_scaffold

    directory = write_scaffold(args.name, args.dir)
    print(f"wrote the pipeline package {args.name} to {directory}/; next:", file=out)
    print(f"  cd {directory} && pip install -e . && pytest", file=out)
    print(f"  hybridflow run {args.name}", file=out)
    return 0


def _import_beam_quietly() -> None:
    """Imports Apache Beam before the command runs. The notices of Beam's import
    that do not concern the user are filtered one by one (:mod:`hybridflow._quiet`,
    installed when :mod:`hybridflow` is imported); any other warning shows."""
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        pass


_LOGGED_COMMANDS = ("run", "generate", "report", "template")


def _log_level(value: Optional[str]) -> Optional[str]:
    from hybridflow.logs import LEVELS

    if value is None:
        return None
    if value.upper() not in LEVELS:
        raise UsageError(f"--log_level={value}: use one of {', '.join(LEVELS)}")
    return value.upper()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``hybridflow`` command; returns the exit code."""
    from hybridflow.logs import CommandLog

    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("HYBRIDFLOW_TRACEBACK"):
        sys.excepthook = _redacted_excepthook  # the traceback of an error re-raised below
    log: Optional[CommandLog] = None
    try:
        with _Stop():
            args, rest = _build_parser().parse_known_args(argv)
            level = _log_level(args.log_level)
            if args.command in _LOGGED_COMMANDS:
                log = CommandLog(args.command, level).start()
            else:
                logging.basicConfig(level=level or "WARNING", format="%(levelname)s %(name)s: %(message)s")
            redact_logs()  # log lines, Beam's and the libraries' too, never show a URI's password or token
            _import_beam_quietly()
            code = _dispatch(args, rest, sys.stdout)
        if log is not None:
            log.stop()
        return code
    except HybridflowError as exc:
        _log_failure(log, exc)
        return report(exc, PROG, log.path if log is not None else None)
    except KeyboardInterrupt as exc:
        _log_failure(log, exc)
        run = log is not None and log.command == "run"
        what = ": the run published nothing and its temporary files were removed" if run else ""
        detail = f" (details: {log.path})" if log is not None and log.path else ""
        return _say(f"{PROG}: interrupted{what}{detail}", 130)
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the log
        if os.environ.get("HYBRIDFLOW_TRACEBACK"):
            raise
        _log_failure(log, exc)
        where = f" (traceback: {log.path})" if log is not None and log.path else ""
        return _say(f"{PROG}: error: internal error: {type(exc).__name__}: {exc}; please report it{where}", 1)


def _log_failure(log, exc: BaseException) -> None:
    """Writes ``exc`` with its traceback to the log file and keeps the terminal quiet from now on:
    the failure is told in one line, and the stopped job's threads end after the command returns."""
    if log is not None:
        log.exception("the command failed", exc)
        log.keep_until_exit()


def _say(line: str, code: int) -> int:
    from hybridflow.logs import terminal
    from hybridflow.redaction import redact  # an exception's message may hold a URI with its password

    print(redact(line), file=terminal())
    return code


def _redacted_excepthook(kind, value, tb) -> None:
    """``HYBRIDFLOW_TRACEBACK=1`` shows the traceback of a failure, with every
    URI's password or token in it redacted as in the one-line errors."""
    import traceback

    from hybridflow.redaction import redact

    sys.__stderr__.write(redact("".join(traceback.format_exception(kind, value, tb))))


def _dispatch(args, rest: Sequence[str], out) -> int:
    from hybridflow.orchestration.cli import COMMANDS as ORCHESTRATION

    if args.extra_pipelines:
        from hybridflow.pipelines import get_pipeline

        for ref in args.extra_pipelines:
            get_pipeline(ref)
    if args.command not in ("run", *ORCHESTRATION) and rest:
        raise UsageError(f"unrecognized arguments: {' '.join(rest)} (see `{PROG} --help`)")
    if args.command == "list":
        return _cmd_list(out)
    if args.command == "describe":
        return _cmd_describe(args.pipeline, out)
    if args.command == "profiles":
        return _cmd_profiles(out)
    if args.command == "generate":
        return _cmd_generate(args, out)
    if args.command == "new":
        return _cmd_new(args, out)
    if args.command == "template":
        from hybridflow.flex.cli import run_template_command

        return run_template_command(args, out)
    if args.command == "report":
        from hybridflow.monitoring.report import write_report

        path = write_report(args.pipeline, args.input, args.out, metrics_json=args.metrics)
        print(f"wrote {path}", file=out)
        return 0
    if args.command in ORCHESTRATION:
        from hybridflow.orchestration.cli import run_command

        return run_command(args, rest, out)
    return _cmd_run(args, rest, out)
