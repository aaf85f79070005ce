"""GCS on gcp-storage-emulator (its own venv), and anonymous Google credentials for tests.

:class:`GcsEmulator` exports ``STORAGE_EMULATOR_HOST`` (with the scheme)
while it runs; Beam's ``gs://`` file system (google-cloud-storage) honours it.
With ``on_disk=True`` objects are plain files under ``disk_root/<bucket>/``,
which the BigQuery emulator's load jobs can read (``FILE_LOADS``).

:func:`anonymous_gcp` must run before the first Google client is built in a
test process: without credentials Beam retries ``google.auth.default()`` with
back-off (about 22 s on the first GCS use) and google-auth probes the GCE
metadata server.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Optional

from hybridflow.testing.services._process import ServiceProcess, free_port, http_ok, tools_home, wait_for

__all__ = ["GcsEmulator", "anonymous_gcp"]


def anonymous_gcp(project: str = "hybridflow-test") -> None:
    """Makes Beam and google-auth use no credentials and never probe the metadata server."""
    os.environ["NO_GCE_CHECK"] = "true"
    os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
    os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", project)
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    from apache_beam.internal.gcp import auth

    # Beam caches the credentials it found; "none" makes its clients anonymous.
    auth._Credentials._credentials_init = True
    auth._Credentials._credentials = None


class GcsEmulator(ServiceProcess):
    """gcp-storage-emulator on ``127.0.0.1:<free port>`` with ``default_bucket`` created."""

    name = "gcs"
    start_timeout = 30.0

    def __init__(self, default_bucket: str = "hybridflow-test", on_disk: bool = False, binary=None):
        super().__init__()
        self.binary = binary or tools_home() / "services" / "venv-gcs" / "bin" / "gcp-storage-emulator"
        self.port = free_port()
        self.default_bucket = default_bucket
        self.on_disk = on_disk

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def disk_root(self) -> Optional[pathlib.Path]:
        """``<root>/<bucket>/<object>`` files when ``on_disk``."""
        return self.workdir / "gcs" if self.on_disk and self.workdir else None

    @property
    def env(self) -> Mapping[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.host}

    def _start(self) -> None:
        binary = self._require(self.binary, "gcp-storage-emulator (GCS)")
        cmd = [binary, "start", "--host=127.0.0.1", f"--port={self.port}", f"--default-bucket={self.default_bucket}"]
        env = dict(os.environ)
        if self.on_disk:
            env.update(STORAGE_BASE=str(self.workdir), STORAGE_DIR="gcs")
        else:
            cmd.append("--in-memory")
        proc = self._spawn(cmd, "gcs.log", env=env)
        wait_for(lambda: http_ok(f"{self.host}/storage/v1/b/{self.default_bucket}"), f"GCS emulator on {self.host}",
                 self.start_timeout, proc, self.log_path("gcs.log"))

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="hybridflow-test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.host})

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(name)
        return name
