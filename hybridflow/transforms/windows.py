"""Window and trigger specs: frozen, validated, constructible from YAML dicts.

``window_spec("sliding:10m/1m")``, ``window_spec({"type": "fixed", "size": "60s"})``
and ``SlidingWindow(size=600, period=60)`` are the same kind of thing. Each
spec knows its Beam ``WindowFn`` (used on bounded input) and how to assign a
timestamp to windows in integer microseconds (used by the streaming
implementation of :class:`~hybridflow.transforms.WindowedAggregate`), with the
same boundaries as Beam's.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Mapping, Optional, Union

from apache_beam.transforms import window as beam_window

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError

__all__ = [
    "FixedWindow",
    "SlidingWindow",
    "SessionWindow",
    "WindowSpec",
    "window_spec",
    "WINDOW_FORMS",
    "Accumulation",
    "TriggerSpec",
    "trigger_spec",
    "PaneTiming",
]

_MICROS = 1_000_000


def _seconds(name: str, value: Any, positive: bool = True) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SchemaError(f"{name}: {exc}") from None
    if positive and seconds <= 0:
        raise SchemaError(f"{name} must be > 0, got {value!r}")
    return seconds


def _micros(seconds: float) -> int:
    return round(seconds * _MICROS)


@dataclasses.dataclass(frozen=True)
class FixedWindow:
    """Tumbling windows of ``size`` seconds, aligned to the epoch (+``offset``)."""

    size: float
    offset: float = 0.0
    merging = False

    def __post_init__(self):
        object.__setattr__(self, "size", _seconds("FixedWindow.size", self.size))
        object.__setattr__(self, "offset", _seconds("FixedWindow.offset", self.offset, positive=False))

    def beam_windowfn(self):
        return beam_window.FixedWindows(self.size, self.offset)

    def assign(self, ts_micros: int) -> list[tuple[int, int]]:
        size, offset = _micros(self.size), _micros(self.offset) % _micros(self.size)
        start = ts_micros - (ts_micros - offset) % size
        return [(start, start + size)]


@dataclasses.dataclass(frozen=True)
class SlidingWindow:
    """Windows of ``size`` seconds starting every ``period`` seconds."""

    size: float
    period: float
    offset: float = 0.0
    merging = False

    def __post_init__(self):
        object.__setattr__(self, "size", _seconds("SlidingWindow.size", self.size))
        object.__setattr__(self, "period", _seconds("SlidingWindow.period", self.period))
        object.__setattr__(self, "offset", _seconds("SlidingWindow.offset", self.offset, positive=False))
        if self.period > self.size:
            raise SchemaError(
                f"SlidingWindow: period {self.period}s is longer than size {self.size}s; "
                "records between windows would be lost (use FixedWindow for tumbling)"
            )

    def beam_windowfn(self):
        return beam_window.SlidingWindows(self.size, self.period, self.offset)

    def assign(self, ts_micros: int) -> list[tuple[int, int]]:
        size, period = _micros(self.size), _micros(self.period)
        offset = _micros(self.offset) % period
        last_start = ts_micros - (ts_micros - offset) % period
        return [(s, s + size) for s in range(last_start, ts_micros - size, -period)]


@dataclasses.dataclass(frozen=True)
class SessionWindow:
    """Sessions per key that close after ``gap`` seconds without records."""

    gap: float
    merging = True

    def __post_init__(self):
        object.__setattr__(self, "gap", _seconds("SessionWindow.gap", self.gap))

    def beam_windowfn(self):
        return beam_window.Sessions(self.gap)

    def assign(self, ts_micros: int) -> list[tuple[int, int]]:
        return [(ts_micros, ts_micros + _micros(self.gap))]


WindowSpec = Union[FixedWindow, SlidingWindow, SessionWindow]

_KINDS = {"fixed": FixedWindow, "sliding": SlidingWindow, "session": SessionWindow, "sessions": SessionWindow}


#: What :func:`window_spec` accepts, as its errors name it.
WINDOW_FORMS = (
    "fixed:SIZE[/OFFSET], sliding:SIZE/PERIOD[/OFFSET] or session:GAP with durations "
    "such as 90s, 10m, 2h (e.g. sliding:10m/1m), or a mapping like "
    "{type: sliding, size: 10m, period: 1m}"
)


def _window_error(value: Any, problem: str) -> SchemaError:
    return SchemaError(f"window {value!r}: {problem}; accepted: {WINDOW_FORMS}")


def _required(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]


def _construct(value: Any, cls, params: Mapping[str, Any]) -> WindowSpec:
    missing = [name for name in _required(cls) if name not in params]
    if missing:
        raise _window_error(value, f"{_kind_name(cls)} needs {', '.join(missing)}")
    try:
        return cls(**params)
    except SchemaError as exc:
        raise _window_error(value, str(exc)) from None


def _kind_name(cls) -> str:
    return next(kind for kind, c in _KINDS.items() if c is cls)


def window_spec(value: Union[WindowSpec, Mapping[str, Any], str]) -> WindowSpec:
    """A window spec from a spec, a dict (``{"type": "sliding", "size": "10m",
    "period": "1m"}``) or text (``fixed:60s``, ``sliding:10m/1m``, ``session:5m``).

    Anything else is one :class:`~hybridflow.errors.SchemaError` naming the
    value and :data:`WINDOW_FORMS`."""
    if isinstance(value, (FixedWindow, SlidingWindow, SessionWindow)):
        return value
    if isinstance(value, str):
        kind, colon, args = value.partition(":")
        cls = _KINDS.get(kind.strip().lower())
        if cls is None:
            problem = f"unknown window type {kind.strip()!r}" if colon else "no window type"
            raise _window_error(value, problem)
        parts = [p.strip() for p in args.split("/")]
        names = [f.name for f in dataclasses.fields(cls)]
        if any(not p for p in parts):
            raise _window_error(value, "an empty duration")
        if len(parts) > len(names):
            raise _window_error(value, f"too many parts for {_kind_name(cls)}")
        return _construct(value, cls, dict(zip(names, parts)))
    if isinstance(value, Mapping):
        params = dict(value)
        cls = _KINDS.get(str(params.pop("type", "")).strip().lower())
        if cls is None:
            raise _window_error(value, "type must be one of fixed, sliding, session")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = set(params) - allowed
        if unknown:
            raise _window_error(value, f"unknown keys {sorted(unknown)} for {_kind_name(cls)} (use {sorted(allowed)})")
        return _construct(value, cls, params)
    raise _window_error(value, "not a window spec")


class Accumulation(str, enum.Enum):
    """Whether each pane repeats earlier panes' data (accumulating) or not."""

    ACCUMULATING = "accumulating"
    DISCARDING = "discarding"


class PaneTiming(str, enum.Enum):
    """When a pane fired relative to the watermark (Beam's PaneInfoTiming)."""

    EARLY = "EARLY"
    ON_TIME = "ON_TIME"
    LATE = "LATE"


@dataclasses.dataclass(frozen=True)
class TriggerSpec:
    """When windows fire, in streaming.

    The on-time pane always fires when the watermark passes the end of the
    window. Optionally:

    Args:
      early_every: seconds of processing time between early (speculative)
        panes while the window is open.
      early_count: fire an early pane after this many new records.
      late_count: records within the allowed lateness fire a late pane every
        ``late_count`` records (default: each one).
      accumulation: accumulating panes carry everything so far; discarding
        panes carry only what arrived since the last pane.
    """

    early_every: Optional[float] = None
    early_count: Optional[int] = None
    late_count: int = 1
    accumulation: Accumulation = Accumulation.ACCUMULATING

    def __post_init__(self):
        if self.early_every is not None:
            object.__setattr__(self, "early_every", _seconds("TriggerSpec.early_every", self.early_every))
        if self.early_count is not None and int(self.early_count) < 1:
            raise SchemaError("TriggerSpec.early_count must be >= 1")
        if int(self.late_count) < 1:
            raise SchemaError("TriggerSpec.late_count must be >= 1")
        try:
            object.__setattr__(self, "accumulation", Accumulation(self.accumulation))
        except ValueError:
            raise SchemaError(
                f"TriggerSpec.accumulation={self.accumulation!r}; use accumulating or discarding"
            ) from None


def trigger_spec(value: Union[TriggerSpec, Mapping[str, Any], None]) -> TriggerSpec:
    """A trigger spec from a spec, a dict or ``None`` (on-time + each late record)."""
    if value is None:
        return TriggerSpec()
    if isinstance(value, TriggerSpec):
        return value
    if isinstance(value, Mapping):
        allowed = {f.name for f in dataclasses.fields(TriggerSpec)}
        unknown = set(value) - allowed
        if unknown:
            raise SchemaError(f"trigger {dict(value)!r}: unknown keys {sorted(unknown)}; use {sorted(allowed)}")
        return TriggerSpec(**value)
    raise SchemaError(f"{value!r} is not a trigger spec")
