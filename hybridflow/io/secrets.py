"""Credentials by reference: a connector's URI names where its password is,
never the password itself.

- ``password_env=NAME``: the environment variable ``NAME`` of the process
  that opens the connection (each worker, and the launching machine when the
  connector checks the endpoint at construction);
- ``password_secret=projects/P/secrets/S[/versions/V]``: a Google Cloud
  Secret Manager secret version (default ``versions/latest``), read with
  ``google-cloud-secret-manager`` (``pip install 'hybridflow[gcp]'``) by the
  process that opens the connection, with its own credentials (on Dataflow:
  the worker service account, which needs ``roles/secretmanager.secretAccessor``
  on the secret).

The reference is resolved when a connection is opened (a DoFn's ``setup()``),
so the password is in no pipeline option, template parameter, job graph,
command line or log. ``SECRET_MANAGER_EMULATOR_HOST=host:port`` points the
Secret Manager client at a local server without credentials (the tests run
one), as ``PUBSUB_EMULATOR_HOST`` does for Pub/Sub.

Used by ``postgresql://`` (:mod:`hybridflow.io.postgres`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

from hybridflow.errors import ConnectorError, InvalidUriError, require

__all__ = ["SecretRef", "EMULATOR_ENV"]

EMULATOR_ENV = "SECRET_MANAGER_EMULATOR_HOST"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^projects/[^/\s]+/secrets/[A-Za-z0-9_-]{1,255}(/versions/[^/\s]+)?$")


@dataclasses.dataclass(frozen=True)
class SecretRef:
    """Where a password is: an environment variable or a Secret Manager version
    (at most one of them); :meth:`resolve` reads it."""

    env: Optional[str] = None
    secret: Optional[str] = None

    def __post_init__(self):
        if self.env is not None and self.secret is not None:
            raise InvalidUriError("give password_env= or password_secret=, not both")
        if self.env is not None and not _ENV_NAME.match(self.env):
            raise InvalidUriError(f"password_env={self.env!r}: give the name of an environment variable, e.g. PGPASSWORD")
        if self.secret is not None:
            if not _SECRET_NAME.match(self.secret):
                raise InvalidUriError(
                    f"password_secret={self.secret!r}: give projects/PROJECT/secrets/NAME[/versions/VERSION]"
                )
            if "/versions/" not in self.secret:
                object.__setattr__(self, "secret", f"{self.secret}/versions/latest")

    @classmethod
    def from_params(cls, params) -> "SecretRef":
        """From a URI's ``password_env`` / ``password_secret`` parameters."""
        return cls(env=params.get("password_env") or None, secret=params.get("password_secret") or None)

    def __bool__(self) -> bool:
        return self.env is not None or self.secret is not None

    def describe(self) -> str:
        return f"password_env={self.env}" if self.env else f"password_secret={self.secret}"

    def resolve(self, where: str = "here") -> Optional[str]:
        """The password (None without a reference); raises ConnectorError
        naming the reference, never its value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConnectorError(
                    f"password_env={self.env}: the environment variable {self.env} is not set {where}; "
                    f"export {self.env} where the connection is opened"
                )
            return value
        if self.secret is not None:
            return _access_secret(self.secret)
        return None


def _access_secret(name: str) -> str:
    secretmanager = require("google.cloud.secretmanager", "password_secret=", "gcp")
    from google.api_core import exceptions

    host = os.environ.get(EMULATOR_ENV)
    if host:
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        client = secretmanager.SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(host))
        )
    else:
        client = secretmanager.SecretManagerServiceClient()
    try:
        response = client.access_secret_version(name=name, timeout=30)
    except exceptions.GoogleAPICallError as exc:
        raise ConnectorError(
            f"password_secret={name}: Secret Manager answered {exc.code.name if exc.code else type(exc).__name__} "
            f"({exc.message}); check the name and that these credentials may access it "
            "(roles/secretmanager.secretAccessor)"
        ) from None
    finally:
        client.transport.close()
    try:
        return response.payload.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConnectorError(f"password_secret={name}: the secret is not UTF-8 text") from None
