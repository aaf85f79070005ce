"""Parts every pipeline's ``build``, ``sinks`` and ``validate`` use.

- :func:`read_records`: ``ReadFrom`` + ``ParseRecords`` with stable labels
  (``Read<Name>``, ``Parse<Name>``), columnar where the input allows it;
- :func:`read_hybrid`: ``--mode hybrid``'s read: ``--history``, then ``--live``
  (:class:`~hybridflow.io.hybrid.HybridRead`), with ``--boundary``/``--seam_horizon``;
- :func:`stream_uri`: adds ``--duration`` to an unbounded synthetic input;
- :func:`file_sinks`: ``{output: <output dir>/<output>.<format>}``;
- :func:`check_window`, :func:`check_inputs`, :func:`check_side_inputs`,
  :func:`runner_name`: the checks
  of a pipeline's ``validate`` that are the same everywhere, as one-line
  usage errors naming the flag.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import HybridflowOptions
from hybridflow.redaction import redact

__all__ = [
    "read_records", "read_hybrid", "can_read_columnar", "stream_uri", "file_sinks", "check_window", "check_inputs",
    "check_side_inputs", "runner_name",
]


def can_read_columnar(options: PipelineOptions, uri: str) -> bool:
    """Whether a bounded read of ``uri`` runs columnar (Arrow tables; see
    :mod:`hybridflow.columnar`): JSON-lines/Parquet/ORC files, unless ``--columnar=never``."""
    from hybridflow.io import supports_columnar

    return options.view_as(HybridflowOptions).columnar != "never" and supports_columnar(uri)


def read_records(
    p: beam.Pipeline,
    name: str,
    uri: str,
    record_type: type,
    options: PipelineOptions,
    bounded: bool,
    timestamp_field: Optional[str] = "event_time",
    columnar: Optional[bool] = None,
) -> Any:
    """Reads ``uri`` and parses it into ``record_type``: ``Read<name>`` then
    ``Parse<name>``; returns ParseRecords' result (``.records``, ``.dead_letters``);
    ``--keep_sensitive`` keeps sensitive field values in its dead letters.
    ``columnar`` defaults to :func:`can_read_columnar` for bounded reads."""
    from hybridflow.io import ReadFrom
    from hybridflow.transforms import ParseRecords

    if columnar is None:
        columnar = bounded and can_read_columnar(options, uri)
    hf = options.view_as(HybridflowOptions)
    return (
        p
        | f"Read{name}" >> ReadFrom(uri, bounded=bounded, columnar=columnar)
        | f"Parse{name}" >> ParseRecords(record_type, timestamp_field=timestamp_field,
                                         timestamp_unit=hf.timestamp_unit or "s",
                                         keep_sensitive=bool(hf.keep_sensitive))
    )


def read_hybrid(
    p: beam.Pipeline, history: Optional[str], record_type: type, options: PipelineOptions, id_field: Any,
    timestamp_field: str = "event_time",
) -> Any:
    """``--mode hybrid``: ``history`` (the pipeline's ``--history``), then
    ``--live`` from ``--boundary`` (default: just after the history's latest
    event time), records of the seam deduplicated by ``id_field`` within
    ``--seam_horizon`` (default 1h). Returns HybridRead's ``.records``/``.dead_letters``."""
    import logging

    from hybridflow.io.hybrid import HybridRead, history_boundary

    hf = options.view_as(HybridflowOptions)
    if not history:
        raise InvalidOptionError("--mode=hybrid needs --history=FILES (the bounded history the live stream continues)")
    if not hf.live:
        raise InvalidOptionError("--mode=hybrid needs --live=kafka://HOST:PORT/TOPIC (the stream that continues --history)")
    unit = hf.timestamp_unit or "s"
    boundary = hf.boundary
    if boundary is None:
        boundary = history_boundary(history, timestamp_field, unit)
        logging.getLogger(__name__).warning(
            "hybrid: --boundary=%s (just after the latest event time in --history); pass --boundary to set it",
            boundary.to_rfc3339())
    return p | "HybridRead" >> HybridRead(
        history, hf.live, boundary, record_type, id_field,
        horizon=hf.seam_horizon if hf.seam_horizon is not None else "1h",
        timestamp_field=timestamp_field, timestamp_unit=unit,
    )


def stream_uri(uri: str, duration: Optional[float]) -> str:
    """``uri`` with ``duration=`` added when it is a synthetic stream without one."""
    from hybridflow.io.uri import parse_uri

    if duration is None or parse_uri(uri).scheme != "synthetic" or "duration=" in uri:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}duration={duration:g}"


def file_sinks(
    options: PipelineOptions, formatted: Iterable[str] = (), jsonl: Iterable[str] = (), parquet: Iterable[str] = ()
) -> dict[str, str]:
    """Sinks under ``--output``: ``formatted`` outputs in ``--output_format``,
    the others in JSON lines or Parquet whatever the format."""
    hf = options.view_as(HybridflowOptions)
    out = hf.output.rstrip("/")
    sinks = {name: f"{out}/{name}.{hf.output_format}" for name in formatted}
    sinks.update({name: f"{out}/{name}.parquet" for name in parquet})
    sinks.update({name: f"{out}/{name}.jsonl" for name in jsonl})
    return sinks


def runner_name(options: PipelineOptions) -> str:
    """The ``--runner`` without its module path (``FlinkRunner``, ``PrismRunner`` ...)."""
    return str(options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1]


def check_window(value: str, flag: str = "--window") -> None:
    """InvalidOptionError naming ``flag`` for a bad window spec."""
    from hybridflow.transforms.windows import window_spec

    try:
        window_spec(value)
    except Exception as exc:  # noqa: BLE001 - SchemaError names the accepted forms
        raise InvalidOptionError(f"{flag}={value}: {exc}") from None


def check_inputs(uris: Mapping[str, Optional[str]]) -> None:
    """InvalidOptionError naming the flag for each ``{flag: URI}`` that
    ``ReadFrom`` refuses (unknown scheme, format, parameter ...)."""
    from hybridflow.io import ReadFrom

    for flag, value in uris.items():
        if value is None:
            continue
        try:
            ReadFrom(value)
        except InvalidOptionError:
            raise
        except Exception as exc:  # noqa: BLE001 - turn any URI problem into a usage error
            raise InvalidOptionError(f"--{flag}={redact(value)}: {exc}") from None


def check_side_inputs(options: PipelineOptions, what: str) -> None:
    """InvalidOptionError for a streaming run on Beam's portable Spark runner,
    which does not support side inputs in streaming (``what`` names the
    pipeline's side input, e.g. "the card profiles")."""
    mode = options.view_as(HybridflowOptions).mode
    if mode != "batch" and runner_name(options) == "SparkRunner":
        raise InvalidOptionError(
            f"--mode={mode}: Beam's portable Spark runner does not support side inputs in streaming "
            f"({what} this pipeline joins); use --profile=flink or --profile=prism"
        )
