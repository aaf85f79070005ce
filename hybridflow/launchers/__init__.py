"""Launchers: start a named batch pipeline when something asks for it.

One small interface, :class:`Launcher`, and one backend per module:

- :class:`~hybridflow.launchers.local.SubprocessLauncher` runs
  ``hybridflow run PIPELINE ...`` as a local subprocess and waits for it;
- :class:`~hybridflow.launchers.dataflow.FlexTemplateLauncher` runs the
  pipeline's flex template on Dataflow (``gcloud dataflow flex-template
  run``), or only builds that command with ``dry_run=True``;
- :class:`~hybridflow.launchers.airflow.AirflowLauncher` triggers a DAG run
  through Airflow's REST API (Airflow 3, Cloud Composer).

:class:`~hybridflow.transforms.launch.LaunchOnAlert` calls a launcher when an
alert fires and records every launch as a :class:`LaunchRecord`: who asked,
why (the alert), when, and the result.

A launcher holds plain configuration only (it is pickled into the pipeline);
its arguments may use the placeholders of :meth:`LaunchRequest.placeholders`,
e.g. ``--output=out/investigations/{launch_id}``. Arguments are checked
against the pipeline's parser when the launcher is made, so a typo fails at
pipeline construction, not at the first alert.

Record data never steers a launch: the placeholders that come from an alert
(``{key}``, ``{rule}``, ``{alert_id}``) are made safe path components that
cannot look like flags (:func:`safe_component`), so a card id of
``../../../../tmp/x`` or ``--profile=evil`` stays one harmless name inside
the directory the argument names. A password written into an argument is
refused (a command line is visible to every user of the host, and a
Dataflow job's parameters to everyone with the project's viewer role): give
it by reference (``?password_env=NAME`` or ``?password_secret=...``, see
:mod:`hybridflow.io.secrets`). Recorded commands are redacted.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations of LaunchRecord as real types to derive its schema.

import abc
import dataclasses
import enum
import hashlib
import re
import shlex
import subprocess
from typing import Mapping, NamedTuple, Optional, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow._lazy import lazy_exports
from hybridflow.errors import SchemaError
from hybridflow.redaction import redact
from hybridflow.schemas import register

__all__ = [
    "Launcher",
    "LaunchRequest",
    "LaunchResult",
    "LaunchRecord",
    "LaunchStatus",
    "SubprocessLauncher",
    "FlexTemplateLauncher",
    "safe_component",
    "AirflowLauncher",
]


class LaunchStatus(str, enum.Enum):
    """What became of one launch."""

    SUCCEEDED = "succeeded"  # the local run finished with exit code 0
    SUBMITTED = "submitted"  # Dataflow accepted the job
    FAILED = "failed"        # non-zero exit, timeout, or the launcher could not start it
    DRY_RUN = "dry_run"      # the command was built, not run


@register
class LaunchRecord(NamedTuple):
    """One launch of a batch pipeline, as recorded by ``LaunchOnAlert``.

    Who: ``requested_by`` (the step that asked) and ``backend``; why: the
    ``rule``, ``key``, ``alert_id`` and ``reason`` of the triggering alert and
    its window; when: ``event_time`` (of the alert) and ``launched_at``
    (processing time); result: ``status``, ``exit_code``, ``job`` (an output
    location or a Dataflow job id / name), the ``command`` and ``detail``.
    ``launch_id`` is deterministic: the same rule and window give the same id.
    """

    launch_id: str
    pipeline: str
    backend: str
    requested_by: str
    rule: str
    key: str
    alert_id: str
    reason: str
    window_start: Optional[Timestamp]
    window_end: Optional[Timestamp]
    event_time: Timestamp
    launched_at: Timestamp
    status: str
    exit_code: Optional[int]
    job: str
    command: str
    detail: str


def _rfc3339(ts: Optional[Timestamp]) -> str:
    return "" if ts is None else ts.to_rfc3339()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_COMPONENT = 64


def safe_component(value: str) -> str:
    """``value`` as one safe path component and argument: only letters, digits,
    ``.``, ``_`` and ``-``, not starting with ``.`` or ``-`` (so never ``..``
    and never a flag), at most 64 characters before the suffix. A value that
    had to change gets ``-`` and 8 hex digits of its SHA-256, so two
    different values never share a name.

    >>> safe_component("card-000042")
    'card-000042'
    >>> safe_component("../../../../tmp/ESCAPED")
    '_.._.._.._.._tmp_ESCAPED-9a9a91ad'
    >>> safe_component("--profile=evil")
    '_--profile_evil-58f53e4b'
    """
    value = str(value)
    cleaned = _UNSAFE.sub("_", value)[:_MAX_COMPONENT]
    if cleaned[:1] in ("", ".", "-"):
        cleaned = "_" + cleaned
    if cleaned == value:
        return value
    return f"{cleaned}-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    """Why a launch is wanted: the rule, the alert and its window."""

    rule: str
    key: str
    alert_id: str
    reason: str
    event_time: Timestamp
    window_start: Optional[Timestamp] = None
    window_end: Optional[Timestamp] = None
    per_key: bool = False  # launches are decided per rule and key (LaunchOnAlert(per_key=True))

    @property
    def launch_id(self) -> str:
        """Deterministic id of the (rule, window), or of the (rule, key,
        window) when launches are per key: at most one launch has it."""
        window = (
            f"{self.window_start.micros}-{self.window_end.micros}"
            if self.window_start is not None and self.window_end is not None
            else f"t{self.event_time.micros}"
        )
        scope = f"{self.rule}|{self.key}" if self.per_key else self.rule
        return hashlib.sha1(f"{scope}|{window}".encode()).hexdigest()[:16]

    @classmethod
    def from_alert(cls, alert, per_key: bool = False) -> "LaunchRequest":
        return cls(
            rule=alert.rule,
            key=alert.key,
            alert_id=alert.alert_id,
            reason=alert.message,
            event_time=alert.event_time,
            window_start=alert.window_start,
            window_end=alert.window_end,
            per_key=per_key,
        )

    def fields(self) -> dict:
        """The request's fields that are also fields of :class:`LaunchRecord`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in LaunchRecord._fields}

    def placeholders(self) -> dict[str, str]:
        """Values for ``{name}`` in launcher arguments. Those from the alert's
        data (``rule``, ``key``, ``alert_id``) pass :func:`safe_component`."""
        return {
            "launch_id": self.launch_id,
            "rule": safe_component(self.rule),
            "key": safe_component(self.key),
            "alert_id": safe_component(self.alert_id),
            "event_time": _rfc3339(self.event_time),
            "window_start": _rfc3339(self.window_start),
            "window_end": _rfc3339(self.window_end),
        }


EXAMPLE_REQUEST = LaunchRequest(
    rule="rule", key="key", alert_id="0" * 20, reason="example", event_time=Timestamp.of(0),
    window_start=Timestamp.of(0), window_end=Timestamp.of(60),
)


def fill(template: str, request: LaunchRequest) -> str:
    """``template`` with its ``{placeholders}`` filled from ``request``."""
    try:
        return template.format_map(request.placeholders())
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + k + "}" for k in request.placeholders())
        raise SchemaError(f"launcher argument {template!r}: bad placeholder {exc}; use {known}") from None


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """The outcome of :meth:`Launcher.launch`."""

    status: LaunchStatus
    command: str
    exit_code: Optional[int] = None
    job: str = ""
    detail: str = ""


class Launcher(abc.ABC):
    """Starts one named pipeline. Subclasses set ``backend`` and build commands."""

    backend: str = ""

    def __init__(self, pipeline: str, dry_run: bool = False, timeout: float = 3600.0):
        self.pipeline = pipeline
        self.dry_run = dry_run
        self.timeout = timeout

    @abc.abstractmethod
    def command(self, request: LaunchRequest) -> list[str]:
        """The command that launches the pipeline for ``request``."""

    @abc.abstractmethod
    def job(self, request: LaunchRequest, stdout: str) -> str:
        """What the launch produced: an output location, a job id or name."""

    def succeeded_status(self) -> LaunchStatus:
        return LaunchStatus.SUCCEEDED

    @staticmethod
    def launched(result: LaunchResult) -> bool:
        """Whether ``result`` started the job (or would have, for a dry run)."""
        return result.status is not LaunchStatus.FAILED

    def environment(self) -> Optional[Mapping[str, str]]:
        """Environment of the command (None: this process's)."""
        return None

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Runs :meth:`command`; never raises: failures become a FAILED result.
        The result's command, job and detail are redacted."""
        result = self._launch(request)
        return dataclasses.replace(
            result, command=redact(result.command), job=redact(result.job), detail=redact(result.detail)
        )

    def _launch(self, request: LaunchRequest) -> LaunchResult:
        try:
            command = self.command(request)
        except Exception as exc:  # noqa: BLE001 - recorded, not raised: a bad launch must not stop the stream
            return LaunchResult(LaunchStatus.FAILED, "", detail=f"{type(exc).__name__}: {exc}")
        line = shlex.join(command)
        if self.dry_run:
            return LaunchResult(LaunchStatus.DRY_RUN, line, job=self.job(request, ""), detail="not run (dry_run)")
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout, env=self.environment()
            )
        except subprocess.TimeoutExpired:
            return LaunchResult(LaunchStatus.FAILED, line, detail=f"timed out after {self.timeout:g}s")
        except (OSError, ValueError) as exc:  # ValueError: an argument no command line can hold (a NUL)
            return LaunchResult(LaunchStatus.FAILED, line, detail=f"could not start {command[0]}: {exc}")
        if done.returncode != 0:
            return LaunchResult(
                LaunchStatus.FAILED, line, exit_code=done.returncode, detail=_last_line(done.stderr or done.stdout)
            )
        return LaunchResult(
            self.succeeded_status(), line, exit_code=0, job=self.job(request, done.stdout),
            detail=_first_line(done.stdout),
        )

    def check_args(self, args: Sequence[str]) -> list[str]:
        """Fills ``args`` with an example request (checks the placeholders)."""
        return [fill(a, EXAMPLE_REQUEST) for a in args]


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _first_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[0][:500] if lines else ""


# The backends import the pipeline registry: load them on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SubprocessLauncher": "hybridflow.launchers.local",
        "FlexTemplateLauncher": "hybridflow.launchers.dataflow",
        "AirflowLauncher": "hybridflow.launchers.airflow",
    },
)
