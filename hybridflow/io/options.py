"""Pipeline flags of the connectors (one PipelineOptions subclass, parsed once by Beam)."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["ConnectorOptions"]


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
