"""Processes of the local services: start on a free loopback port, wait until ready, stop.

Every service is a :class:`ServiceProcess` subclass: ``start()`` launches it in
its own process group with its output in a log file under a private temporary
directory, waits until it answers, and returns ``self``; ``stop()`` terminates
the whole process group (then kills it) and removes the directory. They are
context managers. For fault-injection tests, ``halt()`` stops (or, with
``kill=True``, kills) the processes but keeps the directory and the ports, and
``restart()`` starts them again there: a service that keeps its data on disk
(Kafka's log, the GCS emulator with ``on_disk=True``) comes back with it. On
Linux a service also gets SIGTERM when the process that started it dies, even
if that process is killed hard. Binaries come from ``make tools-services``
(``tools/services/provision.sh``) under :func:`tools_home`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Callable, Mapping, Optional, Sequence

__all__ = ["ServiceUnavailable", "ServiceProcess", "LoopbackBinary", "tools_home", "free_port", "wait_for"]


class ServiceUnavailable(RuntimeError):
    """A local service is not provisioned or did not start; the message says why and the fix."""


def tools_home() -> pathlib.Path:
    """Where ``make tools-services`` puts binaries, jars and venvs (``$HYBRIDFLOW_TOOLS_HOME``,
    default ``~/.cache/hybridflow``)."""
    return pathlib.Path(os.environ.get("HYBRIDFLOW_TOOLS_HOME") or pathlib.Path.home() / ".cache" / "hybridflow")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the kernel picks it)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_for(check: Callable[[], bool], what: str, timeout: float, proc: Optional[subprocess.Popen] = None,
             log: Optional[pathlib.Path] = None) -> None:
    """Polls ``check`` until it is true; fails fast if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with code {proc.returncode} while starting{_tail(log)}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - "not ready yet" takes many forms; the deadline decides
            pass
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"{what} not ready after {timeout:.0f}s{_tail(log)}")
        time.sleep(0.1)


def _tail(log: Optional[pathlib.Path], lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies (Linux), so a
    test run killed hard leaves no service behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 15.0, kill: bool = False) -> None:
    """SIGTERM to the process group of ``proc``, SIGKILL after ``timeout``; ``kill``: SIGKILL at once."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class ServiceProcess:
    """Base of the local services: one or more processes plus a private work directory.

    Subclasses implement :meth:`_start` (launch with :meth:`_spawn`, wait with
    :func:`wait_for`) and may set ``env`` (variables exported while running,
    such as ``PUBSUB_EMULATOR_HOST``).
    """

    name = "service"
    start_timeout = 60.0

    def __init__(self):
        self.workdir: Optional[pathlib.Path] = None
        self.processes: list[subprocess.Popen] = []
        self.startup_seconds: Optional[float] = None
        self._saved_env: dict[str, Optional[str]] = {}

    # -- to override
    def _start(self) -> None:
        raise NotImplementedError

    @property
    def env(self) -> Mapping[str, str]:
        """Environment variables that point clients at this service."""
        return {}

    # -- helpers
    @staticmethod
    def _require(path: pathlib.Path, what: str) -> pathlib.Path:
        if not path.exists():
            raise ServiceUnavailable(f"{what} is not provisioned ({path} missing): run `make tools-services`")
        return path

    def _spawn(self, cmd: Sequence[str], log_name: str, env: Optional[Mapping[str, str]] = None,
               **kwargs) -> subprocess.Popen:
        assert self.workdir is not None
        log_path = self.workdir / log_name
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(map(str, cmd)), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None, start_new_session=True, cwd=self.workdir,
                preexec_fn=_die_with_parent, **kwargs,
            )
        self.processes.append(proc)
        return proc

    def log_path(self, log_name: str) -> pathlib.Path:
        assert self.workdir is not None
        return self.workdir / log_name

    # -- lifecycle
    def start(self):
        started = time.monotonic()
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"hybridflow-{self.name}-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self.startup_seconds = time.monotonic() - started
        return self

    def halt(self, kill: bool = False) -> None:
        """Stops the processes (SIGTERM, a clean shutdown; ``kill=True``: SIGKILL, a crash) and keeps the
        work directory, the ports and the exported variables, so :meth:`restart` brings the same service
        back. Clients see the endpoint refuse connections meanwhile."""
        for proc in reversed(self.processes):
            stop_process(proc, kill=kill)
        self.processes = []

    def restart(self):
        """Starts the service again after :meth:`halt` (halting it first if it runs), on the same ports
        and work directory; data kept on disk there survives. Returns ``self``."""
        assert self.workdir is not None, "restart() needs a started service"
        self.halt()
        started = time.monotonic()
        self._start()
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        self.halt()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LoopbackBinary(ServiceProcess):
    """A service that is one provisioned binary listening on ``host`` (``127.0.0.1:<free port>``),
    ready when the port accepts connections. Subclasses set ``binary`` (a path under
    ``tools_home() / "services" / "bin"``), ``description`` and :meth:`_arguments`."""

    binary = ""
    description = ""
    start_timeout = 30.0

    def __init__(self, binary: Optional[pathlib.Path] = None):
        super().__init__()
        self.binary_path = binary or tools_home() / "services" / "bin" / self.binary
        self.port = free_port()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _arguments(self) -> list[str]:
        raise NotImplementedError

    def _start(self) -> None:
        binary = self._require(self.binary_path, self.description)
        proc = self._spawn([binary, *self._arguments()], f"{self.name}.log")
        wait_for(lambda: tcp_open(self.port), f"{self.description} on {self.host}", self.start_timeout, proc,
                 self.log_path(f"{self.name}.log"))
