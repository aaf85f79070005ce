"""Every hybridflow flag, as PipelineOptions subclasses, and their resolution.

:class:`HybridflowOptions` holds the flags every pipeline shares (``--mode``,
``--input``, ``--output`` ...); each pipeline adds its own in a subclass next
to its ``build`` function (a :class:`~hybridflow.pipelines.PipelineParameters`
subclass). Beam parses every direct PipelineOptions subclass with one parser,
so a shared flag name may be defined only once; a pipeline's own flags are
parsed with the shared ones for that pipeline only, so two pipelines may both
have, say, a ``--history`` flag.

:func:`resolve_options` turns a profile plus command-line flags into one
``PipelineOptions``: profile values first, command-line flags override them;
unknown flags and bad values raise :class:`~hybridflow.errors.InvalidOptionError`
naming the flag and the fix; pipeline defaults fill what neither gave.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
from typing import Any, Iterable, Mapping, Optional, Sequence

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    StandardOptions,
    _BeamArgumentParser,
)

from hybridflow.durations import parse_duration
from hybridflow.errors import InvalidOptionError
from hybridflow.redaction import redact

__all__ = [
    "HybridflowOptions",
    "MonitoringOptions",
    "RunOptions",
    "resolve_options",
    "MODES",
    "ALL_MODES",
    "duration_arg",
    "bool_arg",
    "ratio_arg",
    "check_finite",
    "parser_actions",
]

MODES = ("batch", "streaming")
# hybrid: the history (bounded), then the live stream (unbounded), in one streaming job
# (hybridflow.io.hybrid.HybridRead); a pipeline offers it by listing it in its modes.
ALL_MODES = (*MODES, "hybrid")


def duration_arg(value: str) -> float:
    """argparse type for durations: ``90``, ``90s``, ``10m``, ``2h``."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bool_arg(value: str) -> bool:
    """argparse type for on/off flags: ``true``/``false``, ``yes``/``no``, ``1``/``0``."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean: use true or false")


def ratio_arg(value: str) -> float:
    """argparse type for a share: a number from 0 to 1, or ``off`` (infinity: no limit)."""
    text = str(value).strip().lower()
    if text == "off":
        return math.inf
    try:
        ratio = float(text)
    except ValueError:
        ratio = float("nan")
    if not 0 <= ratio <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a share: use a number from 0 to 1 (e.g. 0.5), or off")
    return ratio


class HybridflowOptions(PipelineOptions):
    """Flags shared by all hybridflow pipelines. Defaults come per pipeline and mode."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--mode",
            choices=ALL_MODES,
            default=None,
            help="batch reads bounded sources; streaming reads unbounded ones; hybrid reads --history, then "
            "continues with --live, in one streaming job (default: the pipeline's).",
        )
        parser.add_argument(
            "--live",
            default=None,
            help="Hybrid: the live source that continues the history (kafka://HOST:PORT/TOPIC), read from --boundary.",
        )
        parser.add_argument(
            "--boundary",
            default=None,
            help="Hybrid: the time that splits history and live (ISO-8601 or epoch seconds): the history holds the "
            "events before it (default: just after the history's latest event time).",
        )
        parser.add_argument(
            "--seam_horizon",
            type=duration_arg,
            default=None,
            help="Hybrid: how far either side of --boundary records are checked for duplicates by id (default 1h).",
        )
        parser.add_argument("--input", default=None, help="Source URI (path/glob, gs://, s3://, synthetic://...).")
        parser.add_argument("--output", default=None, help="Output directory or URI prefix for the pipeline's sinks.")
        parser.add_argument(
            "--output_format",
            choices=("jsonl", "parquet", "csv", "avro", "orc", "ecs"),
            default=None,
            help="File format of the pipeline's outputs (ecs: JSON lines in the Elastic Common Schema shape).",
        )
        parser.add_argument(
            "--duration",
            type=duration_arg,
            default=None,
            help="Streaming: stop the unbounded source after this long (e.g. 60s, 10m); windows then drain.",
        )
        parser.add_argument("--window", default=None, help="Window spec: fixed:60s, sliding:10m/1m, session:5m.")
        parser.add_argument(
            "--allowed_lateness",
            type=duration_arg,
            default=None,
            help="How long after a window ends late records still count (e.g. 5m).",
        )
        parser.add_argument(
            "--cooldown",
            type=duration_arg,
            default=None,
            help="At most one alert per rule and key in this period of event time (0 = all).",
        )
        parser.add_argument(
            "--timestamp_unit",
            choices=("s", "ms", "us"),
            default="s",
            help="Unit of event times given as epoch numbers in the input: s (seconds, the default), "
            "ms or us; ISO-8601 text is read as it is.",
        )
        parser.add_argument(
            "--columnar",
            choices=("auto", "never"),
            default="auto",
            help="Batch: read JSON-lines/Parquet input as Arrow tables and run the transforms vectorized "
            "(auto, the default; same results) or record by record (never).",
        )
        parser.add_argument(
            "--print_alerts",
            type=bool_arg,
            nargs="?",
            const=True,
            default=None,
            help="Print each alert on stdout as soon as it is raised (--print_alerts=false: off). "
            "Workers print it: with LOOPBACK or in-process workers (direct, prism, flink profiles) "
            "that is the launching process; remote workers write it to their logs.",
        )
        parser.add_argument(
            "--keep_sensitive",
            type=bool_arg,
            nargs="?",
            const=True,
            default=False,
            help="Keep the values of sensitive record fields (a record type's `sensitive` attribute, e.g. a "
            "patient's name) in dead-letter payloads and messages; by default they are masked as [redacted].",
        )


class FlinkStateOptions(PipelineOptions):
    """Flink's checkpoint and savepoint flags, declared here so that ``hybridflow run`` accepts them:
    Beam Python does not declare them (it learns them from the Flink job server when it submits), and
    :func:`check_flags` refuses a flag nobody declared. Values go to the job server unchanged; unset
    flags are not sent. See docs/guarantees.md, "Flink: checkpoints, savepoints".
    """

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--checkpointing_interval", type=int, default=None,
                            help="Flink: take a checkpoint every this many milliseconds (default: none).")
        parser.add_argument("--checkpointing_mode", default=None, choices=("EXACTLY_ONCE", "AT_LEAST_ONCE"),
                            help="Flink: checkpoint mode (Flink's default EXACTLY_ONCE).")
        parser.add_argument("--state_backend", default=None,
                            help="Flink: state backend, `filesystem` (the job server jar has no RocksDB).")
        parser.add_argument("--state_backend_storage_path", default=None,
                            help="Flink: where checkpoints are written (file://, s3://, gs://).")
        parser.add_argument("--retain_externalized_checkpoints_on_cancellation", action="store_true", default=None,
                            help="Flink: keep the last checkpoint when the job is cancelled.")
        parser.add_argument("--savepoint_path", default=None,
                            help="Flink: start the job from this savepoint or retained checkpoint; needs "
                            "--flink_master=HOST:PORT (Beam ignores it on [local] and [auto]).")
        parser.add_argument("--allow_non_restored_state", action="store_true", default=None,
                            help="Flink: with --savepoint_path, skip state no operator of the pipeline claims.")

    def validate_flink_state(self) -> None:
        """A restore path that Beam's Flink runner would ignore is a usage error, not a fresh start."""
        master = self.view_as(FlinkRunnerOptions).flink_master
        if self.savepoint_path and master in ("[local]", "[auto]"):
            raise InvalidOptionError(
                f"--savepoint_path={self.savepoint_path}: Beam's Flink runner restores a savepoint only on a Flink "
                f"cluster, not with --flink_master={master}; pass --flink_master=HOST:PORT")


class MonitoringOptions(PipelineOptions):
    """How a run is watched: live Prometheus metrics, a metrics file, a
    deadline and where job alerts go (see :mod:`hybridflow.monitoring`).
    Each flag is also accepted with dashes (``--metrics-port``)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--metrics_port",
            "--metrics-port",
            dest="metrics_port",
            type=int,
            default=None,
            help="Serve the job's metrics for Prometheus on this port (/metrics) while it runs; 0 picks a free port.",
        )
        parser.add_argument(
            "--metrics_address",
            "--metrics-address",
            dest="metrics_address",
            default="127.0.0.1",
            help="Address the metrics server listens on (default 127.0.0.1: this host only; the server has "
            "no authentication, see docs/security.md before using 0.0.0.0).",
        )
        parser.add_argument(
            "--metrics_interval",
            "--metrics-interval",
            dest="metrics_interval",
            type=duration_arg,
            default=5.0,
            help="How often the served metrics are refreshed from the runner (default 5s).",
        )
        parser.add_argument(
            "--metrics_linger",
            "--metrics-linger",
            dest="metrics_linger",
            type=duration_arg,
            default=0.0,
            help="Keep serving the final metrics this long after the job ends, for a last scrape (e.g. 30s).",
        )
        parser.add_argument(
            "--metrics_json",
            "--metrics-json",
            dest="metrics_json",
            default=None,
            help="Write the final metrics and a job summary (state, start, end, duration, counts) to this JSON file.",
        )
        parser.add_argument(
            "--metrics_pushgateway",
            "--metrics-pushgateway",
            dest="metrics_pushgateway",
            default=None,
            help="Push the job's final metrics to this Prometheus Pushgateway (http://host:9091) when it ends "
            "(job=hybridflow, grouped by pipeline): for batch jobs that end between two scrapes.",
        )
        parser.add_argument(
            "--deadline",
            type=duration_arg,
            default=None,
            help="The run must finish within this long (e.g. 30m); past it an alert fires and the exit code is 3.",
        )
        parser.add_argument(
            "--alerts_webhook",
            "--alerts-webhook",
            dest="alerts_webhook",
            default=None,
            help="POST every alert (the pipeline's and the job's, e.g. a missed deadline) as JSON to this URL.",
        )

    def validate_monitoring(self) -> None:
        """Raises InvalidOptionError naming the flag with a bad value."""
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise InvalidOptionError(f"--metrics_port={self.metrics_port}: use a TCP port, 0..65535 (0: any free port)")
        if not self.metrics_interval > 0:
            raise InvalidOptionError(f"--metrics_interval={self.metrics_interval:g}: must be > 0 (e.g. 5s)")
        if self.deadline is not None and not self.deadline > 0:
            raise InvalidOptionError(f"--deadline={self.deadline:g}: must be > 0 (e.g. 30m)")
        if self.metrics_pushgateway is not None and not self.metrics_pushgateway.startswith(("http://", "https://")):
            raise InvalidOptionError(
                f"--metrics_pushgateway={self.metrics_pushgateway}: give the Pushgateway's http:// or https:// URL"
            )
        if self.alerts_webhook is not None and not self.alerts_webhook.startswith(
            ("http://", "https://", "webhook+http://", "webhook+https://")
        ):
            raise InvalidOptionError(
                f"--alerts_webhook={redact(self.alerts_webhook)}: give an http:// or https:// URL"
            )


class RunOptions(PipelineOptions):
    """How ``hybridflow run`` treats a run's outputs (see
    :mod:`hybridflow.pipelines.outputs`) and its dead letters."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--overwrite",
            type=bool_arg,
            nargs="?",
            const=True,
            default=False,
            help="Replace an earlier run in the output directories (batch: once this run succeeded; "
            "streaming: before it starts). Without it, a directory holding an earlier run is refused.",
        )
        parser.add_argument(
            "--max_dead_letter_ratio",
            type=ratio_arg,
            default=None,
            help="Fail the run (exit code 4, nothing published) when more than this share of the records read "
            "became dead letters: 0..1 or off (default: 0.5 in batch, off in streaming).",
        )

    def dead_letter_limit(self, mode: str) -> Optional[float]:
        """``--max_dead_letter_ratio`` for ``mode``: the flag, or 0.5 in batch and none in streaming."""
        if self.max_dead_letter_ratio is None:
            return 0.5 if mode == "batch" else None
        return None if math.isinf(self.max_dead_letter_ratio) else self.max_dead_letter_ratio


class _StrictParser(_BeamArgumentParser):
    """Beam's parser, but errors raise InvalidOptionError instead of exiting."""

    def error(self, message):
        if message.startswith("ambiguous option: "):
            return
        raise InvalidOptionError(message)


def _all_option_classes(options_class: Optional[type] = None) -> list[type]:
    """The PipelineOptions subclasses whose flags one run accepts: Beam's and
    hybridflow's (the direct subclasses of PipelineOptions) and the pipeline's
    own ``options_class`` (a :class:`~hybridflow.pipelines.PipelineParameters`
    subclass, which Beam's global parsing does not see: two pipelines may
    then both have a ``--history`` flag)."""
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    if options_class is not None:
        seen.setdefault(str(options_class), options_class)
    return list(seen.values())


def _strict_parser(options_class: Optional[type] = None) -> _StrictParser:
    parser = _StrictParser(allow_abbrev=False, add_help=False)
    for cls in _all_option_classes(options_class):
        cls._add_argparse_args(parser)
    return parser


def parser_actions(options_class: type) -> list[argparse.Action]:
    """The argparse actions (flags) defined by one PipelineOptions subclass."""
    parser = _BeamArgumentParser(allow_abbrev=False, add_help=False)
    options_class._add_argparse_args(parser)
    return [a for a in parser._actions if a.option_strings]


def repeatable_flags() -> frozenset[str]:
    """Names (without ``--``) of the flags that may be given more than once (``--experiments``, ``--sink`` ...):
    those whose argparse action accumulates values instead of storing one."""
    import hybridflow.io.options  # noqa: F401  (registers ConnectorOptions: --sink)

    single = (argparse._StoreAction, argparse._StoreConstAction, argparse.BooleanOptionalAction)
    return frozenset(a.dest for a in _strict_parser()._actions if a.option_strings and not isinstance(a, single))


def _known_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


def check_finite(options: PipelineOptions, options_class: Optional[type] = None) -> None:
    """Raises InvalidOptionError for a ``type=float`` flag (a shared one or
    one of ``options_class``) whose value is not a finite number: ``inf``
    fails where the value is written or compared, ``nan`` compares false and
    silently turns a rule off. (A pipeline's ``validate`` checks its own
    ranges first, with their message.)"""
    values = options.get_all_options(drop_default=True)
    if options_class is not None:  # not among the options Beam collects
        own = options.view_as(options_class)
        values.update({action.dest: getattr(own, action.dest, None) for action in parser_actions(options_class)})
    for action in _strict_parser(options_class)._actions:
        value = values.get(action.dest)
        if action.type is float and isinstance(value, float) and not math.isfinite(value):
            raise InvalidOptionError(f"{action.option_strings[0]}={value}: use a finite number (not inf or nan)")


def check_flags(flags: Sequence[str], options_class: Optional[type] = None) -> None:
    """Raises InvalidOptionError for an unknown flag or a bad value (the
    flags of Beam, hybridflow and the pipeline's ``options_class``)."""
    parser = _strict_parser(options_class)
    try:
        _, unknown = parser.parse_known_args(list(flags))
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{exc}; see `hybridflow describe PIPELINE` for parameters") from None
    unknown_flags = [u for u in unknown if u.startswith("-")]
    if unknown_flags:
        name = unknown_flags[0].split("=", 1)[0]
        close = difflib.get_close_matches(name, _known_flags(parser), n=1)
        hint = f"did you mean {close[0]}?" if close else "see `hybridflow describe PIPELINE` and Beam's pipeline options"
        raise InvalidOptionError(f"unknown flag {name}: {hint}")
    stray = [u for u in unknown if not u.startswith("-")]
    if stray:
        raise InvalidOptionError(
            f"unexpected argument {stray[0]!r}: flags take the form --name=value"
        )


def check_runner(runner: Any) -> None:
    """Raises InvalidOptionError unless ``runner`` names a runner the way Beam looks one up:
    a known name (``FlinkRunner``, ``flink``), or the dotted path of a runner class."""
    if runner is None or not isinstance(runner, str):
        return
    known = [path.rsplit(".", 1)[-1] for path in StandardOptions.ALL_KNOWN_RUNNERS]
    lowered = {name.lower() for name in known}
    if runner.lower() in lowered or f"{runner.lower()}runner" in lowered:
        return
    if "." in runner:
        import importlib

        module, _, name = runner.rpartition(".")
        try:
            if hasattr(importlib.import_module(module), name):
                return
        except ImportError as exc:
            raise InvalidOptionError(f"--runner={runner}: cannot import {module} ({exc}); check the class path") from exc
    raise InvalidOptionError(
        f"--runner={runner}: unknown runner; use one of {', '.join(sorted(set(StandardOptions.KNOWN_RUNNER_NAMES)))} "
        "or the dotted path of a PipelineRunner class"
    )


def flags_from_mapping(values: Mapping[str, Any]) -> list[str]:
    """``{"runner": "FlinkRunner", "save_main_session": True}`` -> flags."""
    flags: list[str] = []
    for name, value in values.items():
        flag = f"--{name}"
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            flags.extend(f"{flag}={item}" for item in value)
        elif isinstance(value, dict):
            import json

            flags.append(f"{flag}={json.dumps(value)}")
        else:
            flags.append(f"{flag}={value}")
    return flags


class _PipelineFlagsFilter(logging.Filter):
    """Drops Beam's warnings about a pipeline's own flags.

    Those flags (a :class:`~hybridflow.pipelines.PipelineParameters`
    subclass) are parsed for that pipeline only, so Beam's parsing of all
    PipelineOptions subclasses, which runs whenever it reads the options,
    warns "Discarding unparseable args" / "Unparseable argument" / "Discarding
    invalid overrides" (the values of those given) about them on every run.
    :func:`check_flags` has refused every flag no one knows; only the warnings
    about what :func:`resolve_options` found to be the pipeline's are dropped."""

    def __init__(self):
        super().__init__()
        self.tokens: set = set()
        self.names: set = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message, args = str(record.msg), record.args
        if message.startswith("Discarding unparseable args") and isinstance(args, tuple) and args:
            return not set(args[0]) <= self.tokens
        if message.startswith("Unparseable argument: "):
            return message[len("Unparseable argument: "):].split(". Did you mean", 1)[0] not in self.tokens
        if message.startswith("Discarding invalid overrides") and isinstance(args, dict):  # logging unwraps (dict,)
            return not set(args) <= self.names
        return True


_PIPELINE_FLAGS = _PipelineFlagsFilter()


def _quiet_pipeline_flags(flags: Sequence[str], options_class: type) -> None:
    _, unknown = _strict_parser().parse_known_args(list(flags))
    _PIPELINE_FLAGS.tokens.update(unknown)
    _PIPELINE_FLAGS.names.update(action.dest for action in parser_actions(options_class))
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    if _PIPELINE_FLAGS not in beam_logger.filters:
        beam_logger.addFilter(_PIPELINE_FLAGS)


def resolve_options(
    argv: Sequence[str],
    profile_flags: Iterable[str] = (),
    defaults: Optional[Mapping[str, Mapping[str, Any]]] = None,
    modes: Sequence[str] = MODES,
    default_mode: str = "batch",
    options_class: Optional[type] = None,
) -> PipelineOptions:
    """One PipelineOptions from a profile's flags, then ``argv`` (which wins).

    ``defaults`` maps a mode to defaults of HybridflowOptions flags; they fill
    flags that neither the profile nor ``argv`` set. ``options_class`` is the
    pipeline's own flags (the only pipeline flags accepted).
    """
    flags = list(profile_flags) + list(argv)
    check_flags(flags, options_class)
    if options_class is not None:
        _quiet_pipeline_flags(flags, options_class)
    options = PipelineOptions(flags)
    hf = options.view_as(HybridflowOptions)
    standard = options.view_as(StandardOptions)
    check_runner(standard.runner)
    mode = hf.mode or ("streaming" if standard.streaming else default_mode)
    if mode not in modes:
        raise InvalidOptionError(f"--mode={mode}: this pipeline supports {', '.join(modes)}")
    hf.mode = mode
    standard.streaming = mode != "batch"
    if mode != "hybrid":
        given = [f"--{name}" for name in ("live", "boundary", "seam_horizon") if getattr(hf, name) is not None]
        if given:
            raise InvalidOptionError(f"{given[0]} is for --mode=hybrid (history, then live); this run is --mode={mode}")
    options.view_as(MonitoringOptions).validate_monitoring()
    options.view_as(FlinkStateOptions).validate_flink_state()
    for name, value in ((defaults or {}).get(mode) or {}).items():
        if getattr(hf, name, None) is None:
            setattr(hf, name, value)
    return options
