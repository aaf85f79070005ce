"""Fixtures for the flex template tests: a local GCS emulator and an
environment in which nothing can reach Google.

The GCS fixture is local to these tests until the shared service fixtures
(hybridflow.testing.services, issue 5) land; it should then be replaced by
theirs.
"""

import contextlib
import http.server
import json
import os
import threading
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from hybridflow.testing.services.pytest_plugin import unavailable

BUCKET = "hf-bucket"
PROJECT = "test-project"
_DEAD_END = "http://127.0.0.1:9"  # nothing listens on the discard port: connections are refused at once


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GcsEmulator:
    """gcp-storage-emulator (the test extra) on a free loopback port, in memory."""

    def __init__(self, bucket: str = BUCKET):
        self.bucket = bucket
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="gcs-emulator-", suffix=".log", delete=False)
        self.proc = None

    def start(self, timeout: float = 30.0) -> "GcsEmulator":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1",
             f"--port={self.port}", "--in-memory", f"--default-bucket={self.bucket}"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}/storage/v1/b/{self.bucket}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited with {self.proc.returncode}; log {self._log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"gcp-storage-emulator not ready on {self.endpoint} after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        os.unlink(self._log.name)

    def read(self, uri: str) -> bytes:
        """The bytes of a gs:// object, read through the emulator's JSON API."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        bucket, _, name = uri[len("gs://"):].partition("/")
        client = storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )
        return client.bucket(bucket).blob(name).download_as_bytes()


@pytest.fixture(scope="session")
def gcs_emulator():
    """A running GCS emulator with the bucket ``hf-bucket``; stopped after the session."""
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        unavailable("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    emulator = GcsEmulator().start()
    yield emulator
    emulator.stop()


class TokenServer:
    """An OAuth token endpoint on loopback that hands out a fixed access token.

    Offline runs of Beam's Dataflow submission path still look up Google
    credentials (its check of the staging bucket's soft-delete policy ignores
    ``--no_auth``; without credentials Beam retries the lookup for ~22 s).
    :meth:`credentials_file` writes an Application Default Credentials file
    for a service account (a key made here) whose ``token_uri`` is this
    server: the documented ``GOOGLE_APPLICATION_CREDENTIALS`` mechanism,
    answered locally. (An ``authorized_user`` file would not do: google-auth
    always sends those to Google's own token endpoint.)
    """

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.dumps({"access_token": "offline-token", "expires_in": 3600,
                                   "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/token"

    def credentials_file(self, directory) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        path = os.path.join(directory, "adc.json")
        with open(path, "w") as f:
            json.dump({"type": "service_account", "project_id": PROJECT, "private_key_id": "offline",
                       "private_key": pem, "client_email": f"offline@{PROJECT}.iam.gserviceaccount.com",
                       "client_id": "1", "token_uri": self.url}, f)
        return path

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def offline_credentials(tmp_path_factory):
    """``GOOGLE_APPLICATION_CREDENTIALS`` for offline runs (see :class:`TokenServer`)."""
    server = TokenServer()
    yield server.credentials_file(tmp_path_factory.mktemp("adc"))
    server.stop()


def offline_env(**extra) -> dict:
    """Environment for a subprocess that must not reach Google.

    Every HTTP(S) and gRPC connection to anything but loopback goes to a
    proxy that refuses it at once (a call to Google fails fast instead of
    hanging), Google's metadata server is never probed, no credentials or
    gcloud configuration of this machine are visible.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "CLOUDSDK_", "STORAGE_EMULATOR")) and k.lower() not in (
               "http_proxy", "https_proxy", "no_proxy", "grpc_proxy")}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "grpc_proxy"):
        env[name] = _DEAD_END
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        NO_GCE_CHECK="true",
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def gcloud_env(tmp_path):
    """An offline environment for gcloud with an empty configuration directory."""
    if shutil.which("gcloud") is None:
        unavailable("gcloud (the Google Cloud CLI) is not installed: these tests run the real gcloud offline")
    config = tmp_path / "gcloud-config"
    config.mkdir()
    return offline_env(CLOUDSDK_CONFIG=str(config))
