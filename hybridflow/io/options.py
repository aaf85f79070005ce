"""Pipeline flags of the connectors (one PipelineOptions subclass, parsed once by Beam)."""

from __future__ import annotations

from typing import Iterable

from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import InvalidOptionError
from hybridflow.options import bool_arg

__all__ = ["ConnectorOptions", "sink_overrides"]


class ConnectorOptions(PipelineOptions):
    """Flags that configure how ``ReadFrom`` / ``WriteTo`` reach external systems."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--kafka_expansion_service",
            default=None,
            help="host:port of the Java expansion service for kafka:// (Beam's Kafka IO is Java). "
            "Default: Beam's own, which downloads a jar and runs Docker. Locally: `make tools-services`, "
            "then `python -m hybridflow.testing.services kafka-expansion`.",
        )
        parser.add_argument(
            "--allow_empty",
            type=bool_arg,
            nargs="?",
            const=True,
            default=False,
            help="Run on file inputs that match no file (they read nothing); without it, an input pattern "
            "matching no file is an error before the job starts.",
        )
        parser.add_argument(
            "--sink",
            action="append",
            default=None,
            metavar="OUTPUT=URI",
            help="Write a pipeline output to URI instead of under --output; repeat for more outputs or "
            "more sinks of one output, e.g. --sink=alerts=kafka://broker:9092/alerts "
            "--sink=aggregates=bigquery://proj.fraud.windows?partition_by=window_end",
        )


def sink_overrides(options: PipelineOptions, outputs: Iterable[str]) -> dict[str, list[str]]:
    """``--sink`` flags as ``{output: [uri, ...]}``; an unknown output name is a usage error."""
    known = sorted(outputs)
    overrides: dict[str, list[str]] = {}
    for flag in options.view_as(ConnectorOptions).sink or []:
        name, sep, uri = flag.partition("=")
        if not sep or not uri:
            raise InvalidOptionError(f"--sink={flag}: use --sink=OUTPUT=URI (outputs: {', '.join(known)})")
        if name not in known:
            raise InvalidOptionError(f"--sink={flag}: this pipeline has no output {name!r}; outputs: {', '.join(known)}")
        overrides.setdefault(name, []).append(uri)
    return overrides
