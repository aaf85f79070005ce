"""SubprocessLauncher: ``hybridflow run PIPELINE ...`` as a local subprocess."""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional, Sequence

from hybridflow.errors import InvalidOptionError
from hybridflow.launchers import Launcher, LaunchRequest, fill
from hybridflow.redaction import refuse_passwords

__all__ = ["SubprocessLauncher"]


def _take(args: Sequence[str], name: str) -> tuple[Optional[str], list[str]]:
    """(the last value of ``--name``, the other arguments); both flag forms."""
    value, rest, items = None, [], list(args)
    while items:
        arg = items.pop(0)
        if arg == f"--{name}" and items:
            value = items.pop(0)
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return value, rest


class SubprocessLauncher(Launcher):
    """Runs ``hybridflow run PIPELINE ARGS`` locally and waits for it.

    Args:
      pipeline: a registered pipeline name.
      args: arguments of ``hybridflow run`` after the pipeline name
        (``--mode=batch``, ``--profile=prism``, pipeline and Beam flags); may
        use ``{launch_id}``, ``{rule}``, ``{key}``, ``{window_start}`` ... (see
        :meth:`~hybridflow.launchers.LaunchRequest.placeholders`). Checked
        against the pipeline's parser now; a password in them is refused
        (give it by reference, see :mod:`hybridflow.io.secrets`).
      timeout: seconds before the run is killed and recorded as failed.
      dry_run: build and record the command without running it.
      env: extra environment variables for the run.
      command: the command prefix (default: this Python's ``-m hybridflow run``).

    Example::

        SubprocessLauncher("fraud", ["--mode=batch", "--input=data/history/*.jsonl",
                                     "--output=out/investigations/{launch_id}"])
    """

    backend = "subprocess"

    def __init__(
        self,
        pipeline: str,
        args: Sequence[str] = (),
        timeout: float = 3600.0,
        dry_run: bool = False,
        env: Optional[Mapping[str, str]] = None,
        command: Optional[Sequence[str]] = None,
    ):
        super().__init__(pipeline, dry_run=dry_run, timeout=timeout)
        self.args = tuple(args)
        self.env = dict(env or {})
        self.prefix = tuple(command) if command else (sys.executable, "-m", "hybridflow", "run")
        self._check()

    def _check(self) -> None:
        from hybridflow.pipelines import get_pipeline
        from hybridflow.runners_config import load_profile

        spec = get_pipeline(self.pipeline)
        refuse_passwords(self.args, f"SubprocessLauncher({self.pipeline!r}) args")
        profile, flags = _take(self.check_args(self.args), "profile")
        profile_flags = load_profile(profile).flags() if profile else []
        try:
            spec.options(flags, profile_flags)
        except InvalidOptionError as exc:
            raise InvalidOptionError(f"SubprocessLauncher({self.pipeline!r}) args: {exc}") from None

    def command(self, request: LaunchRequest) -> list[str]:
        return [*self.prefix, self.pipeline, *(fill(a, request) for a in self.args)]

    def job(self, request: LaunchRequest, stdout: str) -> str:
        output, _ = _take([fill(a, request) for a in self.args], "output")
        return output or ""

    def environment(self) -> Optional[Mapping[str, str]]:
        return {**os.environ, **self.env} if self.env else None
