"""S3, Kinesis and DynamoDB on moto's server (``moto[server]``, in its own venv).

:class:`S3Server` gives the endpoint and the Beam flags that point Beam's
``s3://`` file system at it (``pipeline_flags``). Buckets must exist before
Beam writes (Beam does not create them): :meth:`create_bucket`.
:meth:`reset` drops every bucket (moto's ``/moto-api/reset``). The same
server answers Kinesis and DynamoDB calls (``kinesis://S?endpoint=...``,
``dynamodb://T?endpoint=...``): :meth:`create_stream`, :meth:`create_table`.
"""

from __future__ import annotations

import urllib.request
from typing import Mapping

from hybridflow.testing.services._process import ServiceProcess, free_port, http_ok, tools_home, wait_for

__all__ = ["S3Server"]

REGION = "us-east-1"


class S3Server(ServiceProcess):
    """moto_server on ``127.0.0.1:<free port>``."""

    name = "s3"
    start_timeout = 60.0

    def __init__(self, binary=None):
        super().__init__()
        self.binary = binary or tools_home() / "services" / "venv-moto" / "bin" / "moto_server"
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> Mapping[str, str]:
        # boto3 clients made by tests find the (fake) credentials and region here
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}

    @property
    def pipeline_flags(self) -> list[str]:
        """Beam flags that point ``s3://`` at this server."""
        return [f"--s3_endpoint_url={self.endpoint}", "--s3_access_key_id=testing",
                "--s3_secret_access_key=testing", f"--s3_region_name={REGION}"]

    def _start(self) -> None:
        binary = self._require(self.binary, "moto (S3)")
        proc = self._spawn([binary, "-H", "127.0.0.1", "-p", str(self.port)], "moto.log")
        wait_for(lambda: http_ok(f"{self.endpoint}/moto-api/data.json"), f"moto on {self.endpoint}",
                 self.start_timeout, proc, self.log_path("moto.log"))

    def client(self, service: str = "s3"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def uri_params(self) -> str:
        """The query parameters that point ``kinesis://`` and ``dynamodb://`` at this server."""
        return f"region={REGION}&endpoint={self.endpoint}"

    def create_stream(self, name: str, shards: int = 1) -> str:
        """A Kinesis stream with ``shards`` shards, active when this returns."""
        client = self.client("kinesis")
        client.create_stream(StreamName=name, ShardCount=shards)
        client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        return name

    def create_table(self, name: str, key: str) -> str:
        """A DynamoDB table with the string partition key ``key`` (on-demand)."""
        client = self.client("dynamodb")
        client.create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        return name

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
