"""``python -m hybridflow.testing.services NAME``: run one local service until Ctrl-C.

Prints how to reach it (addresses and environment variables), e.g.::

    $ python -m hybridflow.testing.services kafka-expansion
    kafka-expansion ready in 2.1s: --kafka_expansion_service=127.0.0.1:40121
"""

from __future__ import annotations

import signal
import sys

from hybridflow.testing import services


def _describe(name: str, service) -> str:
    if name == "kafka":
        return f"bootstrap servers {service.bootstrap} (kafka://{service.bootstrap}/TOPIC)"
    if name == "kafka-expansion":
        return f"--kafka_expansion_service={service.address}"
    if name == "s3":
        return " ".join(service.pipeline_flags)
    if name == "postgres":
        return service.url
    return " ".join(f"{k}={v}" for k, v in service.env.items())


SERVICES = {
    "kafka": services.KafkaBroker,
    "kafka-expansion": services.KafkaExpansionService,
    "pubsub": services.PubSubEmulator,
    "bigtable": services.BigtableEmulator,
    "s3": services.S3Server,
    "gcs": services.GcsEmulator,
    "bigquery": services.BigQueryEmulator,
    "postgres": services.PostgresServer,
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m hybridflow.testing.services {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    name = argv[0]
    try:
        service = SERVICES[name]().start()
    except services.ServiceUnavailable as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"{name} ready in {service.startup_seconds:.1f}s: {_describe(name, service)} (Ctrl-C stops it)",
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
