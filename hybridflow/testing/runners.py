"""Local portable runners for tests: one Prism, one Flink and one Spark job server, shared.

``--runner=PrismRunner``, ``FlinkRunner`` and ``SparkRunner`` (the ``prism``,
``flink`` and ``spark`` profiles) start a job server for the pipeline they run
and stop it only when the Python process exits; for Flink and Spark that is a
new JVM per pipeline. A test session runs many pipelines, so it starts one job
server of each kind with :class:`PrismJobServer` / :class:`FlinkJobServer` /
:class:`SparkJobServer`, points every pipeline at it
(:meth:`LocalJobServer.flags` adds ``--job_endpoint``) and stops it at the
end. They run the binaries ``make tools`` provisioned into Beam's cache
(:func:`prism_binary`, :func:`flink_job_server_jar`,
:func:`spark_job_server_jar`); nothing is downloaded.
Workers are LOOPBACK: they run inside the process that runs the pipeline.

Example::

    with FlinkJobServer() as flink:
        with beam.Pipeline(options=PipelineOptions(flink.flags("--streaming"))) as p:
            ...

A runner that is not provisioned or does not start raises
:class:`RunnerUnavailable`, naming the fix.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional, Sequence

from hybridflow._pins import BEAM_VERSION, FLINK_VERSION, SPARK_VERSION
from hybridflow.testing.services._process import stop_process

__all__ = [
    "RunnerUnavailable",
    "LocalJobServer",
    "PrismJobServer",
    "FlinkJobServer",
    "SparkJobServer",
    "prism_binary",
    "flink_job_server_jar",
    "spark_job_server_jar",
]


def _beam_cache() -> pathlib.Path:
    """Beam's cache of jars and binaries (``~/.apache_beam/cache``)."""
    return pathlib.Path.home() / ".apache_beam" / "cache"


class RunnerUnavailable(RuntimeError):
    """A local runner is not provisioned or did not start; the message says why and the fix."""


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}-{arch}"


def prism_binary() -> pathlib.Path:
    """The Prism binary ``make tools`` built, where Beam's PrismRunner looks for it."""
    name = f"apache_beam-v{BEAM_VERSION}-prism-{_platform()}"
    path = _beam_cache() / "prism" / "bin" / name
    if not os.access(path, os.X_OK):
        raise RunnerUnavailable(f"Prism {BEAM_VERSION} is not provisioned ({path} missing): run `make tools`")
    return path


def _job_server_jar(runner: str, version: str) -> pathlib.Path:
    path = _beam_cache() / "jars" / f"beam-runners-{runner.lower()}-{version}-job-server-{BEAM_VERSION}.jar"
    if not path.is_file():
        raise RunnerUnavailable(
            f"the {runner} {version} job server for Beam {BEAM_VERSION} is not provisioned "
            f"({path} missing): run `make tools`"
        )
    return path


def flink_job_server_jar(flink_version: str = FLINK_VERSION) -> pathlib.Path:
    """The Flink job-server jar ``make tools`` built, where Beam's FlinkRunner looks for it."""
    return _job_server_jar("Flink", flink_version)


def spark_job_server_jar() -> pathlib.Path:
    """The Spark job-server jar ``make tools`` built, where Beam's SparkRunner looks for it."""
    return _job_server_jar("Spark", SPARK_VERSION)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class LocalJobServer:
    """A Beam job service run as a child process on a free localhost port.

    ``start()`` launches it in its own process group, waits until its gRPC
    endpoint answers and returns ``self``; ``stop()`` terminates it (then
    kills it) and removes its work directory (logs, staged artifacts). It is
    also stopped when the Python process exits, if nobody did before.
    """

    name = "job server"
    profile = ""  # the runner profile whose flags pipelines get (hybridflow/runners_config)
    start_timeout = 120.0
    # profile options that configure a job server the runner starts itself
    _SERVER_ONLY = ("job_server_jvm_properties", "prism_location", "flink_job_server_jar", "environment_type")

    def __init__(self):
        self.port: Optional[int] = None
        self.workdir: Optional[pathlib.Path] = None
        self.process: Optional[subprocess.Popen] = None
        self.startup_seconds: Optional[float] = None

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def profile_options(self) -> dict:
        from hybridflow.runners_config import load_profile

        return dict(load_profile(self.profile).options)

    def runner_flags(self) -> list[str]:
        """The profile's flags, less those for a job server the runner would start itself."""
        from hybridflow.options import flags_from_mapping

        options = {k: v for k, v in self.profile_options().items() if k not in self._SERVER_ONLY}
        return flags_from_mapping(options)

    def flags(self, *extra: str) -> list[str]:
        """Pipeline flags that run a pipeline on this job server, plus ``extra``."""
        if self.process is None:
            raise RunnerUnavailable(f"{self.name} is not started")
        return [*self.runner_flags(), f"--job_endpoint={self.endpoint}", "--environment_type=LOOPBACK", *extra]

    @property
    def log_path(self) -> pathlib.Path:
        assert self.workdir is not None
        return self.workdir / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        if self.workdir is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self):
        import grpc

        started = time.monotonic()
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"hybridflow-{self.name.split()[0].lower()}-"))
        self.port = _free_port()
        try:
            cmd = self.command()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.workdir, start_new_session=True,
                )
            atexit.register(self.stop)
            channel = grpc.insecure_channel(self.endpoint)
            try:
                while True:
                    if self.process.poll() is not None:
                        raise RunnerUnavailable(
                            f"{self.name} exited with code {self.process.returncode} while starting; "
                            f"last lines of its log:\n{self.log_tail()}"
                        )
                    try:
                        grpc.channel_ready_future(channel).result(timeout=1.0)
                        break
                    except grpc.FutureTimeoutError:
                        pass
                    if time.monotonic() - started > self.start_timeout:
                        raise RunnerUnavailable(
                            f"{self.name} did not answer on {self.endpoint} within {self.start_timeout:.0f}s; "
                            f"last lines of its log:\n{self.log_tail()}"
                        )
            finally:
                channel.close()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PrismJobServer(LocalJobServer):
    """Beam's Prism runner as a shared job server (``--runner=PrismRunner``).

    Args:
      idle_shutdown: Prism exits by itself after this long without a job, a
        safety net should the test process die without stopping it.
    """

    name = "Prism"
    profile = "prism"

    def __init__(self, idle_shutdown: str = "30m"):
        super().__init__()
        self._idle_shutdown = idle_shutdown

    def command(self) -> list[str]:
        return [
            str(prism_binary()),
            f"--job_port={self.port}",
            "--serve_http=false",
            "--log_level=warn",
            f"--idle_shutdown_timeout={self._idle_shutdown}",
        ]


class JavaJobServer(LocalJobServer):
    """A Beam job server jar (Flink, Spark) started the way the profile's
    runner would start it (same jar, same JVM flags from the profile), once.

    Args:
      master: the cluster the job server runs jobs on (default: ``default_master``,
        a local one inside the job server JVM).
      jvm_flags: JVM flags; default the profile's ``job_server_jvm_properties``.
    """

    master_option = ""  # the pipeline option naming the cluster, e.g. flink_master
    master_argument = ""  # the job server's flag for it, e.g. --flink-master
    default_master = ""

    def __init__(self, master: Optional[str] = None, jvm_flags: Optional[Sequence[str]] = None):
        super().__init__()
        self._master = master or self.default_master
        self._jvm_flags = list(jvm_flags) if jvm_flags is not None else None

    def jar(self) -> pathlib.Path:
        raise NotImplementedError

    def command(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RunnerUnavailable(f"the {self.name} needs Java 17 (`java` not on PATH)")
        jvm_flags = self._jvm_flags
        if jvm_flags is None:
            jvm_flags = list(self.profile_options().get("job_server_jvm_properties") or [])
        return [
            java, *jvm_flags, "-jar", str(self.jar()),
            f"{self.master_argument}={self._master}",
            f"--job-port={self.port}",
            "--artifact-port=0",
            "--expansion-port=0",
            f"--artifacts-dir={self.workdir / 'artifacts'}",
        ]

    def runner_flags(self) -> list[str]:
        flags = [f for f in super().runner_flags() if not f.startswith(f"--{self.master_option}=")]
        return [*flags, f"--{self.master_option}={self._master}"]


class FlinkJobServer(JavaJobServer):
    """Beam's Flink job server (``--runner=FlinkRunner``); ``master`` is ``[local]``
    (a mini-cluster inside the job server JVM, the default) or ``host:port`` of a
    Flink cluster."""

    name = "Flink job server"
    profile = "flink"
    master_option, master_argument, default_master = "flink_master", "--flink-master", "[local]"

    def jar(self) -> pathlib.Path:
        return flink_job_server_jar()


class SparkJobServer(JavaJobServer):
    """Beam's Spark 3 job server (``--runner=SparkRunner``, batch); ``master`` is
    ``local[N]`` (Spark inside the job server JVM, ``local[2]`` by default) or
    ``spark://host:port`` of a Spark cluster."""

    name = "Spark job server"
    profile = "spark"
    master_option, master_argument, default_master = "spark_master_url", "--spark-master-url", "local[2]"

    def jar(self) -> pathlib.Path:
        return spark_job_server_jar()
