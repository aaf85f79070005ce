"""Durations as users write them: ``90``, ``90s``, ``1.5m``, ``2h``, ``1d``; times as reports show them."""

from __future__ import annotations

from typing import Optional, Union

__all__ = ["parse_duration", "format_duration", "iso_time"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Union[str, int, float]) -> float:
    """Seconds in ``value``; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        unit = next((u for u in ("ms", "s", "m", "h", "d") if text.endswith(u)), None)
        number = text[: -len(unit)] if unit else text
        try:
            seconds = float(number) * (_UNITS[unit] if unit else 1.0)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a duration; write seconds or a number with a unit: "
                "500ms, 90s, 10m, 2h, 1d"
            ) from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{value!r} is not a duration: it must be finite and >= 0")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact form: 600 -> '10m', 90 -> '90s'."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def iso_time(seconds: Optional[float]) -> Optional[str]:
    """A Unix time as ISO 8601 UTC: ``2026-12-06T19:50:00.123000Z``; None stays None."""
    if seconds is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
