"""Up-front checks of ``s3://``, ``gs://`` and ``hdfs://`` locations: the bucket exists and the store answers.

Beam's own file IO retries an unreachable store with exponential back-off for
minutes and reports a missing S3 bucket deep inside a write
(``NoSuchBucket ... [while running 'WriteBundles']``, no bucket named), so the
file connectors check once, at construction, with a short timeout, and raise
one :class:`~hybridflow.errors.ConnectorError` line naming the URI and the fix.
For ``hdfs://`` the check is that the NameNode named by ``--hdfs_host`` /
``--hdfs_port`` answers WebHDFS (Beam's ``HadoopFileSystem`` is a WebHDFS
client) and, with ``--hdfs_full_urls``, that the URI names that NameNode.
A check that cannot be made (no credentials to ask with, no permission to
list) is skipped: the pipeline then fails or succeeds as Beam decides.
"""

from __future__ import annotations

import os
from typing import Optional

from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import ConnectorError

__all__ = ["check_bucket"]


def _bucket_of(uri: str) -> tuple[Optional[str], str]:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3", "gs"):
        return None, ""
    return scheme, rest.split("/", 1)[0]


def check_bucket(uri: str, options: Optional[PipelineOptions]) -> None:
    """Raises ConnectorError if ``uri``'s bucket is missing or its store unreachable."""
    if uri.startswith("hdfs://"):
        _check_hdfs(uri, options or PipelineOptions([]))
        return
    scheme, bucket = _bucket_of(uri)
    if scheme == "s3":
        _check_s3(uri, bucket, options or PipelineOptions([]))
    elif scheme == "gs":
        _check_gcs(uri, bucket)


def _check_s3(uri: str, bucket: str, options: PipelineOptions) -> None:
    from apache_beam.options.pipeline_options import S3Options

    from hybridflow.errors import require

    boto3 = require("boto3", f"{uri} (S3)", "aws")
    from botocore.config import Config
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    s3 = options.view_as(S3Options)
    client = boto3.client(
        "s3",
        endpoint_url=s3.s3_endpoint_url,
        region_name=s3.s3_region_name,
        aws_access_key_id=s3.s3_access_key_id,
        aws_secret_access_key=s3.s3_secret_access_key,
        aws_session_token=s3.s3_session_token,
        verify=s3.s3_verify,
        use_ssl=not s3.s3_disable_ssl,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
    )
    where = s3.s3_endpoint_url or "S3"
    try:
        client.head_bucket(Bucket=bucket)
    except EndpointConnectionError as exc:
        raise ConnectorError(f"{uri}: cannot reach {where}; check --s3_endpoint_url and the network") from exc
    except NoCredentialsError:
        return
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise ConnectorError(
                f"{uri}: bucket {bucket!r} does not exist at {where}; create it (aws s3 mb s3://{bucket}) "
                "or fix the URI"
            ) from None
        # 403 and the like: not ours to judge up front


def _check_gcs(uri: str, bucket: str) -> None:
    from hybridflow.errors import require

    storage = require("google.cloud.storage", f"{uri} (GCS)", "gcp")
    import google.auth.exceptions
    import requests
    from google.api_core import exceptions

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        if emulator:
            client = storage.Client.create_anonymous_client()
        else:
            client = storage.Client()
    except google.auth.exceptions.DefaultCredentialsError:
        return
    where = f"the GCS emulator at {emulator}" if emulator else "GCS"
    try:
        exists = client.bucket(bucket).exists(timeout=10, retry=None)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise ConnectorError(f"{uri}: cannot reach {where}; check the network or STORAGE_EMULATOR_HOST") from exc
    except exceptions.Forbidden:
        return
    if not exists:
        raise ConnectorError(
            f"{uri}: bucket {bucket!r} does not exist at {where}; create it (gcloud storage buckets create "
            f"gs://{bucket}) or fix the URI"
        )


def _check_hdfs(uri: str, options: PipelineOptions) -> None:
    import json
    import urllib.error
    import urllib.request

    from apache_beam.options.pipeline_options import HadoopFileSystemOptions

    from hybridflow.errors import InvalidOptionError

    hdfs = options.view_as(HadoopFileSystemOptions)
    if not (hdfs.hdfs_host and hdfs.hdfs_port and hdfs.hdfs_user):
        raise InvalidOptionError(
            f"{uri}: hdfs:// needs --hdfs_host=NAMENODE --hdfs_port=WEBHDFS_PORT (the NameNode's HTTP port, "
            "9870 by default) --hdfs_user=USER"
        )
    namenode = f"{hdfs.hdfs_host}:{hdfs.hdfs_port}"
    if hdfs.hdfs_full_urls:
        server = uri[len("hdfs://"):].split("/", 1)[0]
        if server != namenode:
            raise InvalidOptionError(
                f"{uri}: names the NameNode {server!r} but --hdfs_host/--hdfs_port say {namenode!r}; Beam reaches "
                "one HDFS per pipeline: make them agree"
            )
    url = f"http://{namenode}/webhdfs/v1/?op=GETFILESTATUS&user.name={hdfs.hdfs_user}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            json.load(response)["FileStatus"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise ConnectorError(
            f"{uri}: cannot reach WebHDFS on the NameNode at {namenode} ({getattr(exc, 'reason', exc)}); check "
            "--hdfs_host/--hdfs_port (the NameNode's HTTP port) and dfs.webhdfs.enabled"
        ) from exc
