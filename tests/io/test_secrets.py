"""password_secret=: a Secret Manager version read where the connection is
opened, against a local Secret Manager server (gRPC, the client library's own
request and response messages) and a real PostgreSQL."""

import concurrent.futures

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ReadFrom
from hybridflow.io.secrets import EMULATOR_ENV, SecretRef
from hybridflow.testing import Collect, batch_pipeline, collected
from tests.io.test_postgres import PASSWORD, password_table  # noqa: F401 - a fixture

secretmanager = pytest.importorskip("google.cloud.secretmanager_v1", reason="pip install 'hybridflow[gcp]'")


class SecretManagerServer:
    """Serves AccessSecretVersion from a dict on 127.0.0.1 (NOT_FOUND for other names)."""

    SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

    def __init__(self, secrets):
        import grpc

        self.secrets = dict(secrets)
        self.requests = []
        types = secretmanager.types

        def access(request, context):
            self.requests.append(request.name)
            if request.name not in self.secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
            return types.AccessSecretVersionResponse(
                name=request.name, payload=types.SecretPayload(data=self.secrets[request.name].encode()))

        handler = grpc.method_handlers_generic_handler(self.SERVICE, {
            "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                access,
                request_deserializer=types.AccessSecretVersionRequest.deserialize,
                response_serializer=types.AccessSecretVersionResponse.serialize,
            )
        })
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)


@pytest.fixture
def secret_manager(monkeypatch):
    with SecretManagerServer({"projects/p/secrets/pg/versions/latest": PASSWORD}) as server:
        monkeypatch.setenv(EMULATOR_ENV, f"127.0.0.1:{server.port}")
        yield server


def test_a_secret_version_is_read(secret_manager):
    assert SecretRef(secret="projects/p/secrets/pg").resolve() == PASSWORD
    assert secret_manager.requests == ["projects/p/secrets/pg/versions/latest"]
    with pytest.raises(ConnectorError, match="password_secret=projects/p/secrets/nope/versions/3: Secret Manager "
                                             "answered NOT_FOUND"):
        SecretRef(secret="projects/p/secrets/nope/versions/3").resolve()
    with pytest.raises(InvalidUriError, match="give projects/PROJECT/secrets/NAME"):
        SecretRef(secret="pg")
    with pytest.raises(InvalidUriError, match="not both"):
        SecretRef(env="PGPASSWORD", secret="projects/p/secrets/pg")


def test_postgres_password_from_secret_manager(tmp_path, secret_manager, password_table):  # noqa: F811
    url, table = password_table
    with batch_pipeline() as p:
        rows = p | ReadFrom(f"{url}?table={table}&password_secret=projects/p/secrets/pg")
        rows | beam.Map(lambda r: r["id"]) | Collect(tmp_path / "ids")
    assert sorted(collected(tmp_path / "ids")) == list(range(1, 51))
    # read at construction (the check) and by each DoFn instance in its setup()
    assert len(secret_manager.requests) >= 2
