"""Running a pipeline on a schedule or a cluster, outside Beam: Airflow /
Cloud Composer DAGs (:mod:`~hybridflow.orchestration.airflow`), Kubernetes
manifests (:mod:`~hybridflow.orchestration.k8s`) and crontab lines
(:mod:`~hybridflow.orchestration.cron`).

Each of them starts the same thing, a :class:`ScheduledRun`: ``hybridflow
run PIPELINE --profile PROFILE --mode MODE [flags]``, checked against the
pipeline's own parser (flags, values, the profile's required flags) when the
DAG, manifest or line is written, so a typo fails at once and not at 2 a.m.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional, Sequence

from hybridflow.errors import InvalidOptionError

__all__ = ["ScheduledRun", "check_schedule"]

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_NAMES = re.compile(r"^[A-Za-z]{3}(-[A-Za-z]{3})?(,[A-Za-z]{3}(-[A-Za-z]{3})?)*$")
PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")


_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # minute, hour, day of month, month, day of week


def _field_ok(index: int, field: str) -> bool:
    if index >= 3 and _CRON_NAMES.match(field):  # jan-mar, mon-fri
        return True
    if not _CRON_FIELD.match(field):
        return False
    low, high = _RANGES[index]
    values = [int(n) for part in field.split(",") for n in re.findall(r"\d+", part.split("/")[0])]
    return all(low <= v <= high for v in values)


def check_schedule(schedule: str) -> str:
    """``schedule`` if it is a cron expression (five fields) or a preset such
    as ``@daily``; else an :class:`InvalidOptionError` naming the fix."""
    text = " ".join(schedule.split())
    fields = text.split(" ")
    if text in PRESETS or (len(fields) == 5 and all(_field_ok(i, f) for i, f in enumerate(fields))):
        return text
    raise InvalidOptionError(
        f"--schedule={schedule!r}: give five cron fields (e.g. '0 2 * * *') or one of {', '.join(PRESETS)}"
    )


def _joined(flags: Sequence[str]) -> list[str]:
    """``--name value`` pairs as ``--name=value`` (one token per flag, as DAGs and manifests need)."""
    out: list[str] = []
    for flag in flags:
        if out and out[-1].startswith("--") and "=" not in out[-1] and not flag.startswith("--"):
            out[-1] = f"{out[-1]}={flag}"
        else:
            out.append(flag)
    return out


def _without(flags: Sequence[str], name: str) -> list[str]:
    """(joined) ``flags`` less every ``--name=value``."""
    return [flag for flag in flags if not flag.startswith(f"--{name}=")]


@dataclasses.dataclass(frozen=True)
class ScheduledRun:
    """One ``hybridflow run`` of a registered pipeline, as a scheduler starts it.

    Args:
      pipeline: a registered pipeline name.
      profile: a runner profile name (``hybridflow profiles``).
      flags: the pipeline's parameters and Beam flags, ``--name=value`` or
        ``--name value`` (``--mode=batch``, ``--input=...``, ``--output=...``,
        ``--deadline=2h`` ...); kept as ``--name=value``.
      relative_to: directory a relative local ``--input`` / ``--output`` is
        resolved against (the scheduler's working directory is not the
        caller's); None keeps them relative.
    """

    pipeline: str
    profile: str = "direct"
    flags: tuple[str, ...] = ()
    relative_to: Optional[str] = "."

    def __post_init__(self):
        from hybridflow.options import HybridflowOptions
        from hybridflow.pipelines import get_pipeline
        from hybridflow.runners_config import load_profile

        spec = get_pipeline(self.pipeline)
        profile = load_profile(self.profile)
        flags = _joined(self.flags)
        options = spec.options(flags, profile.flags())
        profile.check_required(options)
        hf = options.view_as(HybridflowOptions)
        if not any(flag.startswith("--mode=") for flag in flags):  # the run says which mode it is
            flags.insert(0, f"--mode={hf.mode}")
        if self.relative_to is not None:
            for name in ("input", "output"):
                value = getattr(hf, name)
                if value and "://" not in value and not os.path.isabs(value):
                    absolute = os.path.abspath(os.path.join(self.relative_to, value))
                    flags = [*_without(flags, name), f"--{name}={absolute}"]
            options = spec.options(flags, profile.flags())
        object.__setattr__(self, "flags", tuple(flags))
        object.__setattr__(self, "_options", options)

    @property
    def options(self):
        """The run's resolved PipelineOptions (profile + flags)."""
        return self._options  # type: ignore[attr-defined]

    @property
    def mode(self) -> str:
        from hybridflow.options import HybridflowOptions

        return self.options.view_as(HybridflowOptions).mode

    @property
    def output(self) -> Optional[str]:
        from hybridflow.options import HybridflowOptions

        return self.options.view_as(HybridflowOptions).output

    @property
    def deadline(self) -> Optional[float]:
        """``--deadline`` in seconds, or None."""
        from hybridflow.options import MonitoringOptions

        return self.options.view_as(MonitoringOptions).deadline

    def option(self, name: str):
        """A resolved option value (``runner``, ``project`` ...)."""
        return self.options.get_all_options().get(name)

    def argv(self) -> list[str]:
        """``hybridflow`` arguments: ``run PIPELINE --profile=P FLAGS``."""
        return ["run", self.pipeline, f"--profile={self.profile}", *self.flags]

    def success_marker(self) -> str:
        """Where a successful run leaves its success marker: ``<output>/_SUCCESS``."""
        if not self.output:
            raise InvalidOptionError(f"pipeline {self.pipeline} has no --output: give --output=DIR")
        return f"{self.output.rstrip('/')}/_SUCCESS"
