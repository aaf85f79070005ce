"""``hybridflow cron-line``: the crontab line of a scheduled batch run.

::

    0 2 * * * cd /srv/fraud && flock -n /tmp/hybridflow-fraud.lock timeout -s TERM 7200 \\
        /srv/venv/bin/hybridflow run fraud --profile=direct --mode=batch --deadline=1h ... \\
        >> /var/log/hybridflow-fraud.log 2>&1

- ``--deadline`` is the run's own check: past it ``hybridflow run`` prints
  a ``deadline exceeded`` line (and POSTs an alert with ``--alerts-webhook``)
  and exits with 3 when the job ends; cron mails or logs that.
- ``timeout`` stops the run (SIGTERM: the job server Beam started stops too)
  at ``--timeout``, by default twice the deadline.
- ``flock -n`` keeps a run from starting while the previous one still runs.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from typing import Optional

from hybridflow.orchestration import ScheduledRun, check_schedule

__all__ = ["cron_line"]


def cron_line(
    run: ScheduledRun,
    schedule: str = "@daily",
    timeout: Optional[float] = None,
    log: Optional[str] = None,
    workdir: Optional[str] = None,
    command: Optional[str] = None,
) -> str:
    """The crontab line that starts ``run`` on ``schedule``.

    Args:
      run: the run (its ``--deadline``, if any, is checked by the run itself); a
        relative ``--output`` should be made with ``relative_to=workdir``.
      schedule: five cron fields or a preset (``@daily``).
      timeout: seconds after which the run is stopped (default: twice the
        deadline; none without a deadline).
      log: file the run's output is appended to (default
        ``/tmp/hybridflow-PIPELINE.log``).
      workdir: directory the run starts in (default: the current one).
      command: the ``hybridflow`` command (default: the one next to this
        Python, else ``python -m hybridflow``).
    """
    schedule = check_schedule(schedule)
    if timeout is None and run.deadline is not None:
        timeout = 2 * run.deadline
    hybridflow = shlex.split(command) if command else _hybridflow_command()
    parts = ["flock", "-n", f"/tmp/hybridflow-{run.pipeline}.lock"]
    if timeout is not None:
        parts += ["timeout", "-s", "TERM", str(max(1, math.ceil(timeout)))]
    parts += [*hybridflow, *run.argv()]
    log = log or f"/tmp/hybridflow-{run.pipeline}.log"
    line = f"cd {shlex.quote(os.path.abspath(workdir or '.'))} && {shlex.join(parts)} >> {shlex.quote(log)} 2>&1"
    # cron treats % as a newline in the command: escape it
    return f"{schedule} {line.replace('%', chr(92) + '%')}"


def _hybridflow_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "hybridflow")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "hybridflow"]
