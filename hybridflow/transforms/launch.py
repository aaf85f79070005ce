"""LaunchOnAlert: when an alert fires, launch a named batch pipeline.

The event-driven step of a hybrid system: a stream crossing a threshold
starts a batch job (say, a full re-scoring of a card's history). At most one
launch per rule and window, and none within a cooldown after the previous
launch of the same rule; every launch is recorded as a
:class:`~hybridflow.launchers.LaunchRecord` (who, why, when, result).

Decisions are taken in event-time order, so a stream and a batch run over the
same alerts launch the same jobs:

- bounded input: all alerts of a rule are grouped and walked in event-time
  order;
- unbounded input: a stateful DoFn per rule buffers alerts and decides when
  the watermark passes them (an event-time timer, set at whole milliseconds
  as portable runners keep them), remembering the last launch and the
  windows already launched for in its state.

The launches themselves run in the next step, one call to the launcher per
decision. Like any side effect in Beam they are at-least-once if a bundle is
retried; the launch id (and the Dataflow job name built from it) is
deterministic, so a retried launch can be recognised.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Iterable, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.launchers import Launcher, LaunchRecord, LaunchRequest, LaunchStatus
from hybridflow.metrics import counter
from hybridflow.schemas import Alert, fields_of

__all__ = ["LaunchOnAlert"]

LAUNCH, SAME_WINDOW, COOLDOWN = "launch", "window", "cooldown"


def _window_of(alert: Alert) -> tuple:
    if alert.window_start is not None and alert.window_end is not None:
        return (alert.window_start.micros, alert.window_end.micros)
    return (None, alert.event_time.micros)


def _order(alert: Alert) -> tuple:
    return (alert.event_time.micros, _window_of(alert)[1], alert.key, alert.alert_id)


@dataclasses.dataclass
class _Memory:
    """Per rule: event time of the last launch and the windows launched for."""

    last_launch: Optional[int] = None
    windows: dict = dataclasses.field(default_factory=dict)  # window -> its end (µs)

    def forget_before(self, micros: int) -> None:
        self.windows = {w: end for w, end in self.windows.items() if end >= micros}


@dataclasses.dataclass(frozen=True)
class _Policy:
    cooldown: int  # µs
    lateness: int  # µs

    def decide(self, memory: _Memory, alerts: Iterable[Alert]) -> list[tuple[Alert, str]]:
        """Verdicts for ``alerts`` (walked in event-time order); updates ``memory``."""
        verdicts = []
        for alert in sorted(alerts, key=_order):
            window = _window_of(alert)
            if window in memory.windows:
                verdicts.append((alert, SAME_WINDOW))
            elif memory.last_launch is not None and alert.event_time.micros < memory.last_launch + self.cooldown:
                verdicts.append((alert, COOLDOWN))
            else:
                memory.last_launch = alert.event_time.micros
                memory.windows[window] = window[1]
                verdicts.append((alert, LAUNCH))
        return verdicts


class _Counted:
    def setup(self):
        self._launch = counter("launches_requested")
        self._suppressed = counter("launches_suppressed")
        self._why = {SAME_WINDOW: counter("launches_suppressed.window"), COOLDOWN: counter("launches_suppressed.cooldown")}

    def _requests(self, verdicts):
        for alert, verdict in verdicts:
            if verdict == LAUNCH:
                self._launch.inc()
                yield alert
            else:
                self._suppressed.inc()
                self._why[verdict].inc()


class _DecideBounded(_Counted, beam.DoFn):
    def __init__(self, policy: _Policy):
        self._policy = policy

    def process(self, element):
        _, alerts = element
        yield from self._requests(self._policy.decide(_Memory(), alerts))


def _due(alert: Alert, timestamp: Timestamp) -> int:
    """Whole millisecond (µs) at which the alert may be decided: the watermark
    has passed its event time and its element timestamp."""
    micros = max(alert.event_time.micros, timestamp.micros)
    return micros - micros % 1000 + (1000 if micros % 1000 else 0)


class _DecideUnbounded(_Counted, beam.DoFn):
    PENDING = BagStateSpec("pending", PickleCoder())
    MEMORY = ReadModifyWriteStateSpec("memory", PickleCoder())
    NEXT = ReadModifyWriteStateSpec("next", PickleCoder())
    DUE = TimerSpec("due", TimeDomain.WATERMARK)

    def __init__(self, policy: _Policy):
        self._policy = policy

    def process(
        self,
        element,
        timestamp=beam.DoFn.TimestampParam,
        pending=beam.DoFn.StateParam(PENDING),
        next_due=beam.DoFn.StateParam(NEXT),
        due=beam.DoFn.TimerParam(DUE),
    ):
        _, alert = element
        at = _due(alert, timestamp)
        pending.add((at, alert))
        current = next_due.read()
        if current is None or at < current:
            due.set(Timestamp(micros=at))
            next_due.write(at)

    @on_timer(DUE)
    def decide(
        self,
        fire_time=beam.DoFn.TimestampParam,
        pending=beam.DoFn.StateParam(PENDING),
        memory=beam.DoFn.StateParam(MEMORY),
        next_due=beam.DoFn.StateParam(NEXT),
        due=beam.DoFn.TimerParam(DUE),
    ):
        # portable runners keep timers in ms: a firing at ms T covers T .. T+999µs
        now = fire_time.micros - fire_time.micros % 1000 + 999
        items = list(pending.read())
        pending.clear()
        ready = [alert for at, alert in items if at <= now]
        later = [(at, alert) for at, alert in items if at > now]
        state = memory.read() or _Memory()
        for alert in self._requests(self._policy.decide(state, ready)):
            yield beam.window.TimestampedValue(alert, fire_time)
        state.forget_before(now - self._policy.lateness)
        memory.write(state)
        for item in later:
            pending.add(item)
        if later:
            at = min(at for at, _ in later)
            due.set(Timestamp(micros=at))
            next_due.write(at)
        else:
            next_due.clear()


class _Launch(beam.DoFn):
    """Calls the launcher for each decided alert and records the launch."""

    def __init__(self, launcher: Launcher, requested_by: str):
        self._launcher = launcher
        self._requested_by = requested_by

    def setup(self):
        self._launches = counter("launches")
        self._by_status = {s: counter(f"launches.{s.value}") for s in LaunchStatus}

    def process(self, alert: Alert):
        request = LaunchRequest.from_alert(alert)
        launched_at = Timestamp.now()
        result = self._launcher.launch(request)
        self._launches.inc()
        self._by_status[result.status].inc()
        yield LaunchRecord(
            launch_id=request.launch_id,
            pipeline=self._launcher.pipeline,
            backend=self._launcher.backend,
            requested_by=self._requested_by,
            launched_at=launched_at,
            status=result.status.value,
            exit_code=result.exit_code,
            job=result.job,
            command=result.command,
            detail=result.detail,
            **request.fields(),
        )


class _KeepRules(beam.DoFn):
    def __init__(self, rules):
        self._rules = rules

    def setup(self):
        self._filtered = counter("filtered")

    def process(self, alert):
        if self._rules is None or alert.rule in self._rules:
            yield alert.rule, alert
        else:
            self._filtered.inc()


class LaunchOnAlert(beam.PTransform):
    """Alerts -> :class:`~hybridflow.launchers.LaunchRecord`, one per launched batch job.

    For each rule, the first alert of a window launches the pipeline; more
    alerts of that window (other keys, later panes) do not, and nor does any
    alert less than ``cooldown`` of event time after the rule's last launch.
    Suppressed alerts are counted in ``hybridflow/launches_suppressed`` (and
    ``.window`` / ``.cooldown``); alerts of other rules in ``filtered``.
    Launches are counted in ``launches`` and ``launches.<status>``.

    Args:
      launcher: a :class:`~hybridflow.launchers.Launcher`
        (``SubprocessLauncher`` or ``FlexTemplateLauncher``).
      rules: the alert rules that launch (default: every rule).
      cooldown: event time after a launch of a rule during which the rule
        launches nothing more: seconds or ``"30m"``.
      allowed_lateness: how long a launched window is remembered after the
        watermark passed it (streaming), so late panes of the same window do
        not launch again.
      requested_by: who asks, as recorded (default: this step's label).

    Example::

        launches = alerts | "Investigate" >> LaunchOnAlert(
            SubprocessLauncher("fraud", ["--mode=batch", "--input=data/history/*.jsonl",
                                         "--output=out/investigations/{launch_id}"]),
            rules=["velocity"], cooldown="30m")
    """

    def __init__(
        self,
        launcher: Launcher,
        rules: Optional[Sequence[str]] = None,
        cooldown: Union[float, str] = 0,
        allowed_lateness: Union[float, str] = "1h",
        requested_by: Optional[str] = None,
    ):
        super().__init__()
        if not isinstance(launcher, Launcher):
            raise SchemaError(
                f"LaunchOnAlert: launcher must be a hybridflow.launchers.Launcher, got {type(launcher).__name__}"
            )
        if isinstance(rules, str):
            rules = [rules]
        self._launcher = launcher
        self._rules = None if rules is None else frozenset(rules)
        try:
            self._policy = _Policy(
                cooldown=round(parse_duration(cooldown) * 1e6), lateness=round(parse_duration(allowed_lateness) * 1e6)
            )
        except ValueError as exc:
            raise SchemaError(f"LaunchOnAlert: {exc}") from None
        self._requested_by = requested_by

    def expand(self, alerts):
        missing = set(Alert._fields) - {f.name for f in fields_of(alerts.element_type)}
        if missing:
            raise SchemaError(f"LaunchOnAlert takes Alert records (ThresholdAlerts output); missing {sorted(missing)}")
        keyed = (
            alerts
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyByRule" >> beam.ParDo(_KeepRules(self._rules)).with_output_types(typing.Tuple[str, Alert])
        )
        if alerts.is_bounded:
            decided = (
                keyed
                | "GroupByRule" >> beam.GroupByKey()
                | "Decide" >> beam.ParDo(_DecideBounded(self._policy)).with_output_types(Alert)
            )
        else:
            decided = keyed | "Decide" >> beam.ParDo(_DecideUnbounded(self._policy)).with_output_types(Alert)
        requested_by = self._requested_by or self.label
        return decided | "Launch" >> beam.ParDo(_Launch(self._launcher, requested_by)).with_output_types(LaunchRecord)
