"""BigQuery on bqemulator (DuckDB behind BigQuery's REST API and Storage Read gRPC API).

What works against it, checked by ``tests/io/test_bigquery.py``: tables from a
schema with day partitioning on a field, ``STREAMING_INSERTS``,
``FILE_LOADS`` (Beam writes temporary JSON files to ``gs://`` and runs a load
job; the load job reads them from the GCS emulator's disk directory, so run
:class:`~hybridflow.testing.services.gcs.GcsEmulator` with ``on_disk=True``
and pass its ``disk_root``), and ``ReadFromBigQuery(table=...,
method=DIRECT_READ)``. What does not (bqemulator 1.4.0):

- ``EXPORT`` reads: the extract job neither expands ``*`` in the destination
  URI nor writes through the GCS emulator (HTTP 500);
- any ``query=`` read: the emulator does not materialise a query into a
  destination table, so Beam's temporary table is missing (404);
- partitioning from a load job: ``load.timePartitioning`` is accepted and
  ignored, so a table created by ``FILE_LOADS`` is unpartitioned (tables
  created by ``tables.insert``, as streaming inserts do, are partitioned);
- most per-row insert errors: ``insertAll`` accepts nulls in REQUIRED
  columns and unknown fields. It does reject a value it cannot convert to
  its column's type (``insertErrors``, reason ``invalid``) when the request
  says ``skipInvalidRows``, as Beam's streaming inserts do: that is how
  ``tests/pipelines/test_sink_failures.py`` sends rejected rows to dead
  letters. Without ``skipInvalidRows`` such a row is an HTTP 500, which
  clients retry;
- a write to a dataset that does not exist answers HTTP 500 (real BigQuery:
  404), which Beam retries for minutes: create datasets first (hybridflow's
  sink checks the dataset up front).

Beam has no emulator switch for BigQuery: :meth:`BigQueryEmulator.redirect_beam`
points its two clients (apitools ``BigqueryV2`` for tables and jobs,
google-cloud-bigquery for ``insertAll``) and the Storage Read client at the
emulator with anonymous credentials, for runners that execute in this process
(FnApiRunner, BundleBasedDirectRunner, Prism with LOOPBACK workers), and
:meth:`restore_beam` undoes it.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Optional

from hybridflow.testing.services._process import ServiceProcess, free_port, http_ok, tools_home, wait_for

__all__ = ["BigQueryEmulator", "PROJECT"]

PROJECT = "hybridflow-test"


class BigQueryEmulator(ServiceProcess):
    """bqemulator on two free loopback ports (REST ``url``, gRPC ``grpc_host``), ephemeral."""

    name = "bigquery"
    start_timeout = 60.0

    def __init__(self, project: str = PROJECT, gcs_local_root: Optional[pathlib.Path] = None, binary=None):
        super().__init__()
        self.binary = binary or tools_home() / "services" / "venv-bq" / "bin" / "bqemulator"
        self.project = project
        self.port = free_port()
        self.grpc_port = free_port()
        self.gcs_local_root = gcs_local_root
        self._undo: list = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_host(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def env(self) -> Mapping[str, str]:
        return {"BIGQUERY_EMULATOR_HOST": self.url}

    def _start(self) -> None:
        binary = self._require(self.binary, "bqemulator (BigQuery)")
        env = dict(os.environ)
        if self.gcs_local_root is not None:
            env["BQEMU_GCS_LOCAL_ROOT"] = str(self.gcs_local_root)
        proc = self._spawn([binary, "start", "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
                            "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
                            "--project", self.project, "--ephemeral", "--log-level", "warning"],
                           "bqemulator.log", env=env)
        wait_for(lambda: http_ok(f"{self.url}/readyz"), f"BigQuery emulator on {self.url}", self.start_timeout,
                 proc, self.log_path("bqemulator.log"))

    def stop(self) -> None:
        self.restore_beam()
        super().stop()

    def client(self):
        """A google-cloud-bigquery client of the emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=self.project, credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": self.url})

    def create_dataset(self, dataset: str) -> str:
        self.client().create_dataset(dataset, exists_ok=True)
        return f"{self.project}.{dataset}"

    # -- pointing Beam at the emulator
    def _patch(self, owner, name, value) -> None:
        self._undo.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def redirect_beam(self) -> None:
        """Points Beam's BigQuery IO in this process at the emulator (see the module doc)."""
        import grpc
        from apache_beam.io.gcp import bigquery_tools
        from apache_beam.io.gcp.internal.clients.bigquery import bigquery_v2_client
        from apitools.base.py import base_api
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery as gbq
        from google.cloud.bigquery_storage_v1.services.big_query_read import client as read_client
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import grpc as read_grpc

        from hybridflow.testing.services.gcs import anonymous_gcp

        anonymous_gcp(self.project)
        base_url = self.url + "/bigquery/v2/"
        # apitools client: Beam builds BigqueryV2() without a url, so the class default decides
        self._patch(bigquery_v2_client.BigqueryV2, "BASE_URL", base_url)
        self._patch(bigquery_v2_client.BigqueryV2, "MTLS_BASE_URL", base_url)
        # ... and it would run its own credential discovery when Beam passes credentials=None
        self._patch(base_api, "_SkipGetCredentials", lambda: True)

        project, url = self.project, self.url

        class EmulatorClient(gbq.Client):
            def __init__(self, *args, **kwargs):
                kwargs.setdefault("project", project)
                kwargs.setdefault("credentials", AnonymousCredentials())
                kwargs.setdefault("client_options", {"api_endpoint": url})
                super().__init__(*args, **kwargs)

        class BigQueryModule:
            """google.cloud.bigquery with Client pointing at the emulator (used for insertAll)."""

            def __getattr__(self, name):
                return EmulatorClient if name == "Client" else getattr(gbq, name)

        self._patch(bigquery_tools, "gcp_bigquery", BigQueryModule())

        grpc_host = self.grpc_host
        original_init = read_client.BigQueryReadClient.__init__

        def read_init(client_self, *args, **kwargs):
            if "transport" not in kwargs:
                kwargs["transport"] = read_grpc.BigQueryReadGrpcTransport(
                    channel=grpc.insecure_channel(grpc_host), credentials=AnonymousCredentials())
            original_init(client_self, *args, **kwargs)

        self._patch(read_client.BigQueryReadClient, "__init__", read_init)

    def restore_beam(self) -> None:
        """Undoes :meth:`redirect_beam`."""
        while self._undo:
            owner, name, value = self._undo.pop()
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


_MISSING = object()
