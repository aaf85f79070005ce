"""Packaging for hybridflow. The Beam pin lives in hybridflow/_pins.py."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
BEAM_VERSION = re.search(
    r'^BEAM_VERSION = "([^"]+)"', (HERE / "hybridflow" / "_pins.py").read_text(), re.M
).group(1)

setup(
    name="hybridflow",
    version="0.1.0",
    description="Reusable Apache Beam transforms and pipelines for hybrid batch + streaming systems",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["hybridflow", "hybridflow.*"]),
    package_data={
        "hybridflow": ["runners_config/*.yaml", "beam_yaml/*.yaml", "monitoring/dashboards/*.json", "py.typed"]
    },
    install_requires=[
        f"apache-beam=={BEAM_VERSION}",
        "pyarrow>=14",
        "fastavro>=1.9",
        "PyYAML>=6",
        "ddsketch>=3.0,<4",  # percentile sketches (deterministic, mergeable)
        # Beam's Enrichment / RequestResponseIO (Enrich with a lookup handler) import
        # google.api_core unconditionally, but Beam lists it only in its gcp extra
        "google-api-core>=2,<3",
        "requests>=2.28",  # alert webhooks (urllib3's Retry under a requests session)
    ],
    extras_require={
        # Secret Manager: password_secret= references (hybridflow.io.secrets), read on the workers
        "gcp": [f"apache-beam[gcp]=={BEAM_VERSION}", "google-cloud-secret-manager>=2.20"],
        "aws": [f"apache-beam[aws]=={BEAM_VERSION}", "boto3>=1.28"],
        # Beam's Kafka IO is Java (cross-language); kafka-python checks the broker and topics
        # up front and backs the test helpers
        "kafka": ["kafka-python>=2.0"],
        "postgres": ["psycopg[binary]>=3.1"],
        "yaml": [f"apache-beam[yaml]=={BEAM_VERSION}"],  # Beam YAML pipelines (hybridflow.beam_yaml)
        # live Prometheus metrics (--metrics_port) and the HTML report (hybridflow report)
        "monitoring": ["prometheus-client>=0.20", "matplotlib>=3.8"],
        # `hybridflow k8s --check`: Kubernetes' JSON schemas and a validator for the operator's CRD schema
        "k8s": ["kubernetes-validate>=1.31", "jsonschema>=4"],
        "test": [
            f"apache-beam[test,yaml]=={BEAM_VERSION}",
            "pytest>=8",
            "pytest-timeout>=2.2",
            "hypothesis>=6.100",
            # local GCS for the offline Dataflow job tests (tests/flex)
            "gcp-storage-emulator==2026.7.19",
            "websockets>=12",  # drives headless Chromium (DevTools protocol) in the report test
        ],
        "bench": ["duckdb>=1.0", "psutil>=5.9"],
        # iceberg:// (pyiceberg with its SQL catalog on SQLite); kinesis:// and dynamodb:// use the aws extra
        "iceberg": ["pyiceberg[sql-sqlite]>=0.9"],
        "hdfs": [f"apache-beam[hadoop]=={BEAM_VERSION}"],  # hdfs:// (Beam's HadoopFileSystem over WebHDFS)
    },
    entry_points={"console_scripts": ["hybridflow=hybridflow.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: System :: Distributed Computing",
    ],
)
