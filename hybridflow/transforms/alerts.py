"""ThresholdAlerts: rules over record or aggregate fields -> Alert records."""

from __future__ import annotations

import dataclasses
import typing
import hashlib
import math
import operator
from typing import Any, Mapping, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from hybridflow.durations import parse_duration
from hybridflow.errors import SchemaError
from hybridflow.metrics import EventTimeLag, counter
from hybridflow.schemas import Alert, fields_of

__all__ = ["ThresholdAlerts", "Rule", "ZScoreRule", "NotInRule", "rule_from_dict", "alert_id"]

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


@dataclasses.dataclass(frozen=True)
class Rule:
    """Fires when ``field <op> threshold``, e.g. ``txn_count >= 8``, or, with
    ``threshold_field``, when ``field <op>`` another field of the same record,
    e.g. ``mean > max_temp`` where ``max_temp`` came from an enrichment (a
    per-key threshold). A record whose ``field`` or ``threshold_field`` is
    null does not fire.
    """

    name: str
    field: str
    op: str
    threshold: Optional[float] = None
    threshold_field: Optional[str] = None

    def __post_init__(self):
        if self.op not in _OPS:
            raise SchemaError(f"rule {self.name!r}: op {self.op!r}; use one of {' '.join(_OPS)}")
        if self.threshold_field is None:
            _check_threshold(self.name, self.threshold)
        elif self.threshold is not None:
            raise SchemaError(
                f"rule {self.name!r}: threshold={self.threshold!r} and threshold_field={self.threshold_field!r} "
                "both given; keep threshold for a constant or threshold_field to compare with another field"
            )
        elif not isinstance(self.threshold_field, str) or not self.threshold_field:
            raise SchemaError(f"rule {self.name!r}: threshold_field={self.threshold_field!r} must be a field name")

    def fields(self) -> set[str]:
        return {self.field} | ({self.threshold_field} if self.threshold_field else set())

    def numeric_fields(self) -> set[str]:
        return self.fields()

    def threshold_of(self, record) -> Optional[float]:
        """The threshold for ``record``: the constant, or its ``threshold_field``."""
        return self.threshold if self.threshold_field is None else getattr(record, self.threshold_field)

    def evaluate(self, record) -> Optional[tuple[float, str]]:
        value, threshold = getattr(record, self.field), self.threshold_of(record)
        if value is None or threshold is None or not _OPS[self.op](value, threshold):
            return None
        against = f"{threshold:g}" if self.threshold_field is None else f"{self.threshold_field}={threshold:g}"
        return float(value), f"{self.field}={value:g} {self.op} {against}"


def _check_threshold(name: str, threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        hint = ""
        if isinstance(threshold, str):
            hint = f"; to compare with the field {threshold!r} of each record, use threshold_field={threshold!r}"
        elif threshold is None:
            hint = "; give threshold=NUMBER, or threshold_field=FIELD to compare with another field"
        raise SchemaError(f"rule {name!r}: threshold {threshold!r} must be a finite number{hint}")


def _has_history(record, count_field: Optional[str], min_count: int) -> bool:
    if count_field is None:
        return True
    count = getattr(record, count_field)
    return count is not None and count >= min_count


@dataclasses.dataclass(frozen=True)
class ZScoreRule:
    """Fires when ``(value - mean) / max(stddev, min_stddev) >= threshold``.

    ``mean_field`` and ``stddev_field`` usually come from an enriched profile;
    with ``count_field`` the rule only applies when the profile has at least
    ``min_count`` observations.
    """

    name: str
    value_field: str
    mean_field: str
    stddev_field: str
    threshold: float
    count_field: Optional[str] = None
    min_count: int = 0
    min_stddev: float = 1.0

    def __post_init__(self):
        _check_threshold(self.name, self.threshold)

    def fields(self) -> set[str]:
        names = {self.value_field, self.mean_field, self.stddev_field}
        return names | ({self.count_field} if self.count_field else set())

    def numeric_fields(self) -> set[str]:
        return self.fields()

    def threshold_of(self, record) -> float:
        return self.threshold

    def evaluate(self, record) -> Optional[tuple[float, str]]:
        value, mean = getattr(record, self.value_field), getattr(record, self.mean_field)
        if value is None or mean is None or not _has_history(record, self.count_field, self.min_count):
            return None
        stddev = max(getattr(record, self.stddev_field) or 0.0, self.min_stddev)
        z = (value - mean) / stddev
        if not math.isfinite(z) or z < self.threshold:
            return None
        return z, f"{self.value_field}={value:g} is {z:.1f} standard deviations above the mean {mean:g}"


@dataclasses.dataclass(frozen=True)
class NotInRule:
    """Fires when ``field`` is not among the values of the list ``set_field``
    (e.g. a transaction country not among the card's usual countries)."""

    name: str
    field: str
    set_field: str
    count_field: Optional[str] = None
    min_count: int = 0

    def fields(self) -> set[str]:
        return {self.field, self.set_field} | ({self.count_field} if self.count_field else set())

    def numeric_fields(self) -> set[str]:
        return {self.count_field} if self.count_field else set()

    def threshold_of(self, record) -> float:
        return 1.0

    def evaluate(self, record) -> Optional[tuple[float, str]]:
        value, known = getattr(record, self.field), getattr(record, self.set_field)
        if value is None or known is None or not _has_history(record, self.count_field, self.min_count):
            return None
        if value in known:
            return None
        return 1.0, f"{self.field}={value} not in usual {sorted(known)}"


RuleLike = Union[Rule, ZScoreRule, NotInRule, Mapping[str, Any]]
_RULE_TYPES = {"threshold": Rule, "zscore": ZScoreRule, "not_in": NotInRule}


def rule_from_dict(spec: Mapping[str, Any]):
    """A rule from a dict: ``{"name": "velocity", "field": "n", "op": ">=",
    "threshold": 8}``; ``"type": "zscore"`` or ``"not_in"`` for the others."""
    params = dict(spec)
    kind = params.pop("type", "threshold")
    cls = _RULE_TYPES.get(kind)
    if cls is None:
        raise SchemaError(f"rule {spec!r}: type must be one of {', '.join(_RULE_TYPES)}")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params) - allowed
    if unknown:
        raise SchemaError(f"rule {spec!r}: unknown keys {sorted(unknown)}; use {sorted(allowed)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise SchemaError(f"rule {spec!r}: {exc}") from None


def alert_id(rule: str, key: str, event_time: Timestamp) -> str:
    """Deterministic id of an alert: the same rule, key and time give the same id."""
    return hashlib.sha1(f"{rule}|{key}|{event_time.micros}".encode()).hexdigest()[:20]


class _EvaluateRules(beam.DoFn):
    def __init__(self, rules, key_field, time_field, has_window):
        self._rules = rules
        self._key_field = key_field
        self._time_field = time_field
        self._has_window = has_window

    def setup(self):
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._lag = EventTimeLag()
        self._alerts = counter("alerts")
        self._per_rule = {r.name: counter(f"alerts.{r.name}") for r in self._rules}

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        self._in.inc()
        self._lag.observe(timestamp)
        key = str(getattr(record, self._key_field))
        event_time = getattr(record, self._time_field)
        window_start = getattr(record, "window_start") if self._has_window else None
        window_end = getattr(record, "window_end") if self._has_window else None
        for rule in self._rules:
            hit = rule.evaluate(record)
            if hit is None:
                continue
            value, message = hit
            threshold = float(rule.threshold_of(record))
            self._alerts.inc()
            self._per_rule[rule.name].inc()
            self._out.inc()
            yield Alert(
                alert_id=alert_id(rule.name, key, event_time),
                rule=rule.name,
                key=key,
                value=value,
                threshold=threshold,
                event_time=event_time,
                window_start=window_start,
                window_end=window_end,
                message=f"{rule.name} {self._key_field}={key}: {message}",
            )


def _bucket(alert: Alert, cooldown_micros: int) -> int:
    return alert.event_time.micros // cooldown_micros


class _CooldownStreaming(beam.DoFn):
    """Streaming cooldown: the first alert per (rule, key, bucket) passes."""

    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, cooldown_micros: int):
        self._cooldown = cooldown_micros

    def setup(self):
        self._suppressed = counter("alerts_suppressed")

    def process(
        self,
        element,
        seen_state=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, alert = element
        bucket = _bucket(alert, self._cooldown)
        seen = seen_state.read() or set()
        if bucket in seen:
            self._suppressed.inc()
        else:
            seen.add(bucket)
            seen_state.write(seen)
            # forget buckets a full cooldown after they end
            expiry_micros = (max(seen) + 2) * self._cooldown
            expiry.set(Timestamp(micros=expiry_micros - expiry_micros % 1000))
            yield alert

    @on_timer(EXPIRY)
    def expire(self, fire_time=beam.DoFn.TimestampParam, seen_state=beam.DoFn.StateParam(SEEN)):
        now = fire_time.micros - fire_time.micros % 1000 + 999
        seen = {b for b in (seen_state.read() or set()) if (b + 2) * self._cooldown > now}
        if seen:
            seen_state.write(seen)
        else:
            seen_state.clear()


class _SuppressedCount(beam.DoFn):
    def setup(self):
        self._suppressed = counter("alerts_suppressed")

    def process(self, element):
        _, alerts = element
        alerts = sorted(alerts, key=lambda a: (a.event_time, a.alert_id))
        self._suppressed.inc(len(alerts) - 1)
        yield alerts[0]


class ThresholdAlerts(beam.PTransform):
    """Evaluates rules on each record and emits an :class:`~hybridflow.schemas.Alert` per hit.

    Works on any schema'd input: raw records (per-transaction rules such as a
    z-score against an enriched profile) or the rows of
    :class:`WindowedAggregate` (``txn_count >= 8``). With a ``cooldown``, at
    most one alert is kept per rule, key and cooldown period of event time
    (the earliest in batch; the first to arrive in streaming); the rest are
    counted in ``hybridflow/alerts_suppressed``.

    Args:
      rules: :class:`Rule`, :class:`ZScoreRule`, :class:`NotInRule` or dicts
        (see :func:`rule_from_dict`).
      key: the field that identifies the entity (card, sensor ...).
      time_field: event time of the alert; default ``window_end`` when the
        input has windows, else ``event_time``.
      cooldown: seconds (or ``"10m"``); 0 keeps every alert.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import ThresholdAlerts
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> txns = transactions([("c1", 950.0, 5), ("c1", 990.0, 30), ("c2", 20.0, 40), ("c1", 999.0, 900)])
        >>> with batch_pipeline() as p:
        ...     alerts = p | CreateEvents(txns) | ThresholdAlerts(
        ...         [{"name": "big", "field": "amount", "op": ">=", "threshold": 900}],
        ...         key="card_id", cooldown="10m")
        ...     _ = (alerts | beam.Map(lambda a: (a.key, a.value)) | beam.combiners.ToList()
        ...                 | beam.FlatMap(sorted) | beam.Map(print))
        ('c1', 950.0)
        ('c1', 999.0)
    """

    def __init__(
        self,
        rules: Sequence[RuleLike],
        key: str,
        time_field: Optional[str] = None,
        cooldown: Union[float, str] = 0,
    ):
        super().__init__()
        self._rules = tuple(rule_from_dict(r) if isinstance(r, Mapping) else r for r in rules)
        if not self._rules:
            raise SchemaError("ThresholdAlerts needs at least one rule")
        names = [r.name for r in self._rules]
        if len(set(names)) != len(names):
            raise SchemaError(f"ThresholdAlerts: rule names must be unique: {names}")
        self._key = key
        self._time_field = time_field
        try:
            self._cooldown = parse_duration(cooldown)
        except ValueError as exc:
            raise SchemaError(f"ThresholdAlerts.cooldown: {exc}") from None

    def expand(self, pcoll):
        from hybridflow.columnar import is_columnar

        columnar = is_columnar(pcoll)
        record_type = pcoll.element_type.record_type if columnar else pcoll.element_type
        names = {f.name: f for f in fields_of(record_type)}
        has_window = "window_start" in names and "window_end" in names
        time_field = self._time_field or ("window_end" if has_window else "event_time")
        needed = {self._key, time_field}.union(*(r.fields() for r in self._rules))
        missing = sorted(needed - set(names))
        if missing:
            raise SchemaError(
                f"ThresholdAlerts: fields {missing} are not in the input ({', '.join(names)})"
            )
        for rule in self._rules:
            for name in sorted(rule.numeric_fields()):
                info = names[name]
                if info.is_list or info.type not in (int, float):
                    raise SchemaError(
                        f"ThresholdAlerts: rule {rule.name!r} compares field {name!r}, which is "
                        f"{'a list' if info.is_list else info.type.__name__}, not a number; "
                        "use an int or float field (cast it first, e.g. with beam.Map)"
                    )
        evaluator = _EvaluateRules(self._rules, self._key, time_field, has_window)
        if columnar:  # vectorized pre-selection, the same evaluator on the candidate rows
            from hybridflow.columnar.alerts import EvaluateTables

            alerts = pcoll | "EvaluateTables" >> EvaluateTables(evaluator, self._rules, record_type)
        else:
            alerts = pcoll | "Evaluate" >> beam.ParDo(evaluator).with_output_types(Alert)
        if not self._cooldown:
            return alerts
        cooldown = round(self._cooldown * 1e6)
        keyed = (
            alerts
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyByRule" >> beam.Map(lambda a: ((a.rule, a.key, _bucket(a, cooldown)), a))
        )
        if pcoll.is_bounded:
            return (
                keyed
                | "GroupPeriod" >> beam.GroupByKey()
                | "Earliest" >> beam.ParDo(_SuppressedCount()).with_output_types(Alert)
            )
        return (
            keyed
            | "KeyByRuleKey" >> beam.Map(lambda kv: (f"{kv[0][0]}|{kv[0][1]}", kv[1])).with_output_types(
                typing.Tuple[str, Alert]
            )
            | "Cooldown" >> beam.ParDo(_CooldownStreaming(cooldown)).with_output_types(Alert)
        )
