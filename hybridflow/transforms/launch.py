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

The launch runs inside the deciding step, so a window counts as launched, and
the cooldown starts, only once the launcher succeeded: a launch that fails is
retried (``retries``, with exponential backoff), and one that still fails
becomes a ``launch_failed`` dead letter while the next alert of the same
window may launch. A crafted alert therefore cannot use up a window or a
cooldown; its data reaches the command only through
:func:`~hybridflow.launchers.safe_component`. Like any side effect in Beam,
launches are at-least-once if a bundle is retried; the launch id (and the
Dataflow job name built from it) is deterministic, so a retried launch can
be recognised.
"""

from __future__ import annotations

import dataclasses
import time
import typing
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.launchers import Launcher, LaunchRecord, LaunchRequest, LaunchResult, LaunchStatus
from hybridflow.metrics import counter
from hybridflow.schemas import Alert, DeadLetter, fields_of
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter

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
class _Outcome:
    """How the launch of one alert ended: the record (when it launched), or
    the failure after every attempt."""

    record: Optional[LaunchRecord]
    result: LaunchResult
    attempts: int

    @property
    def launched(self) -> bool:
        return self.record is not None


@dataclasses.dataclass(frozen=True)
class _Policy:
    cooldown: int  # µs
    lateness: int  # µs

    def decide(
        self, memory: _Memory, alerts: Iterable[Alert], launch: Callable[[Alert], _Outcome]
    ) -> Iterator[tuple[Alert, str, Optional[_Outcome]]]:
        """Walks ``alerts`` in event-time order: ``(alert, verdict, outcome)``,
        launching where the verdict is LAUNCH; a window and the cooldown are
        taken (``memory`` updated) only by a launch that succeeded."""
        for alert in sorted(alerts, key=_order):
            window = _window_of(alert)
            if window in memory.windows:
                yield alert, SAME_WINDOW, None
            elif memory.last_launch is not None and alert.event_time.micros < memory.last_launch + self.cooldown:
                yield alert, COOLDOWN, None
            else:
                outcome = launch(alert)
                if outcome.launched:
                    memory.last_launch = alert.event_time.micros
                    memory.windows[window] = window[1]
                yield alert, LAUNCH, outcome


@dataclasses.dataclass(frozen=True)
class _Launching:
    """Launches one alert with retries and records it (Beam-free)."""

    launcher: Launcher
    requested_by: str
    retries: int
    backoff: float  # seconds before the first retry, doubling
    per_key: bool = False
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, alert: Alert) -> _Outcome:
        request = LaunchRequest.from_alert(alert, self.per_key)
        for attempt in range(1, self.retries + 2):
            launched_at = Timestamp.now()
            result = self.launcher.launch(request)
            if self.launcher.launched(result):
                return _Outcome(self._record(request, launched_at, result), result, attempt)
            if attempt <= self.retries:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        return _Outcome(None, result, attempt)

    def _record(self, request: LaunchRequest, launched_at: Timestamp, result: LaunchResult) -> LaunchRecord:
        return LaunchRecord(
            launch_id=request.launch_id,
            pipeline=self.launcher.pipeline,
            backend=self.launcher.backend,
            requested_by=self.requested_by,
            launched_at=launched_at,
            status=result.status.value,
            exit_code=result.exit_code,
            job=result.job,
            command=result.command,
            detail=result.detail,
            **request.fields(),
        )

    def failure(self, outcome: _Outcome) -> str:
        """The dead-letter message of a launch that failed (redacted by the launcher)."""
        r = outcome.result
        exit_code = f", exit code {r.exit_code}" if r.exit_code is not None else ""
        return (
            f"launch of {self.launcher.pipeline} ({self.launcher.backend}) failed after {outcome.attempts} "
            f"attempt(s){exit_code}: {r.detail or 'no detail'}; command: {r.command or '(not built)'}"
        )


class _Decide:
    """Counters and outputs shared by the bounded and unbounded deciders."""

    def __init__(self, policy: _Policy, launching: _Launching, stage: str):
        self._policy = policy
        self._launching = launching
        self._stage = stage

    def setup(self):
        self._requested = counter("launches_requested")
        self._launches = counter("launches")
        self._retried = counter("launch_retries")
        self._by_status = {s: counter(f"launches.{s.value}") for s in LaunchStatus}
        self._suppressed = counter("launches_suppressed")
        self._why = {SAME_WINDOW: counter("launches_suppressed.window"), COOLDOWN: counter("launches_suppressed.cooldown")}
        self._dead = DeadLetterCounter()

    def _outputs(self, memory: _Memory, alerts: Iterable[Alert]):
        """LaunchRecords, and TaggedOutput dead letters for launches that failed."""
        for alert, verdict, outcome in self._policy.decide(memory, alerts, self._launching):
            if outcome is None:
                self._suppressed.inc()
                self._why[verdict].inc()
                continue
            self._requested.inc()
            self._retried.inc(outcome.attempts - 1)
            self._by_status[outcome.result.status].inc()
            if outcome.launched:
                self._launches.inc()
                yield outcome.record
            else:
                yield self._dead.dead_letter(self._stage, "launch_failed", self._launching.failure(outcome), alert)


class _DecideBounded(_Decide, beam.DoFn):
    def process(self, element):
        _, alerts = element
        yield from self._outputs(_Memory(), alerts)


def _due(alert: Alert, timestamp: Timestamp) -> int:
    """Whole millisecond (µs) at which the alert may be decided: the watermark
    has passed its event time and its element timestamp."""
    micros = max(alert.event_time.micros, timestamp.micros)
    return micros - micros % 1000 + (1000 if micros % 1000 else 0)


class _DecideUnbounded(_Decide, beam.DoFn):
    PENDING = BagStateSpec("pending", PickleCoder())
    MEMORY = ReadModifyWriteStateSpec("memory", PickleCoder())
    NEXT = ReadModifyWriteStateSpec("next", PickleCoder())
    DUE = TimerSpec("due", TimeDomain.WATERMARK)

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
        for output in self._outputs(state, ready):
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(output.tag, beam.window.TimestampedValue(output.value, fire_time))
            else:
                yield beam.window.TimestampedValue(output, fire_time)
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


class _KeepRules(beam.DoFn):
    """Alerts of the launching rules, keyed by what decides together: the
    rule, or the rule and the alert's key (``per_key``)."""

    def __init__(self, rules, per_key: bool):
        self._rules = rules
        self._per_key = per_key

    def setup(self):
        self._filtered = counter("filtered")

    def process(self, alert):
        if self._rules is None or alert.rule in self._rules:
            yield (f"{alert.rule}\x00{alert.key}" if self._per_key else alert.rule), alert
        else:
            self._filtered.inc()


class LaunchOnAlert(beam.PTransform):
    """Alerts -> :class:`~hybridflow.launchers.LaunchRecord`, one per launched
    batch job, and dead letters for launches that failed.

    For each rule (or each rule and key, with ``per_key``), the first alert
    of a window launches the pipeline; more alerts of that window (other
    keys, later panes) do not, and nor does any alert less than ``cooldown``
    of event time after the rule's last launch.
    Only a launch that succeeded (or was submitted, or built in a dry run)
    takes its window and starts the cooldown: a failed one is retried
    ``retries`` times (waiting ``retry_backoff``, then twice as long ...),
    then becomes a ``launch_failed`` dead letter (the alert as payload; the
    message has the launcher's last detail and the redacted command), and the
    next alert of that window may launch.
    Suppressed alerts are counted in ``hybridflow/launches_suppressed`` (and
    ``.window`` / ``.cooldown``); alerts of other rules in ``filtered``.
    Launches are counted in ``launches_requested``, ``launches``,
    ``launches.<status>`` (final outcomes) and ``launch_retries``.

    Args:
      launcher: a :class:`~hybridflow.launchers.Launcher`
        (``SubprocessLauncher`` or ``FlexTemplateLauncher``).
      rules: the alert rules that launch (default: every rule).
      cooldown: event time after a launch of a rule during which the rule
        launches nothing more: seconds or ``"30m"``.
      per_key: decide per rule and alert key instead of per rule: each key
        (a machine, a card) gets its own launches, windows, cooldown and
        launch ids.
      allowed_lateness: how long a launched window is remembered after the
        watermark passed it (streaming), so late panes of the same window do
        not launch again.
      requested_by: who asks, as recorded (default: this step's label).
      retries: attempts after the first for a launch that failed.
      retry_backoff: seconds (or ``"10s"``) before the first retry, doubling.

    Returns a result with ``.launches`` (:class:`~hybridflow.launchers.LaunchRecord`)
    and ``.dead_letters`` (:class:`~hybridflow.schemas.DeadLetter`).

    Example::

        result = alerts | "Investigate" >> LaunchOnAlert(
            SubprocessLauncher("fraud", ["--mode=batch", "--input=data/history/*.jsonl",
                                         "--output=out/investigations/{launch_id}"]),
            rules=["velocity"], cooldown="30m")
        result.launches | WriteTo("out/launches.jsonl")
        result.dead_letters | "FailedLaunches" >> WriteTo("out/launch_failures.jsonl")
    """

    def __init__(
        self,
        launcher: Launcher,
        rules: Optional[Sequence[str]] = None,
        cooldown: Union[float, str] = 0,
        allowed_lateness: Union[float, str] = "1h",
        requested_by: Optional[str] = None,
        retries: int = 2,
        retry_backoff: Union[float, str] = "10s",
        per_key: bool = False,
    ):
        super().__init__()
        if not isinstance(launcher, Launcher):
            raise SchemaError(
                f"LaunchOnAlert: launcher must be a hybridflow.launchers.Launcher, got {type(launcher).__name__}"
            )
        if isinstance(rules, str):
            rules = [rules]
        if not isinstance(retries, int) or retries < 0:
            raise SchemaError(f"LaunchOnAlert: retries={retries!r} must be an integer >= 0")
        self._launcher = launcher
        self._rules = None if rules is None else frozenset(rules)
        try:
            self._policy = _Policy(
                cooldown=round(parse_duration(cooldown) * 1e6), lateness=round(parse_duration(allowed_lateness) * 1e6)
            )
            self._backoff = parse_duration(retry_backoff)
        except ValueError as exc:
            raise SchemaError(f"LaunchOnAlert: {exc}") from None
        self._retries = retries
        self._requested_by = requested_by
        self._per_key = bool(per_key)

    def expand(self, alerts):
        missing = set(Alert._fields) - {f.name for f in fields_of(alerts.element_type)}
        if missing:
            raise SchemaError(f"LaunchOnAlert takes Alert records (ThresholdAlerts output); missing {sorted(missing)}")
        keyed = (
            alerts
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyByRule" >> beam.ParDo(_KeepRules(self._rules, self._per_key)).with_output_types(typing.Tuple[str, Alert])
        )
        launching = _Launching(
            self._launcher, self._requested_by or self.label, self._retries, self._backoff, self._per_key
        )
        if alerts.is_bounded:
            keyed = keyed | "GroupByRule" >> beam.GroupByKey()
            decide = _DecideBounded(self._policy, launching, self.label)
        else:
            decide = _DecideUnbounded(self._policy, launching, self.label)
        result = keyed | "Launch" >> beam.ParDo(decide).with_outputs(DEAD_LETTERS, main="launches")
        result.launches.element_type = LaunchRecord
        result[DEAD_LETTERS].element_type = DeadLetter
        return result
