"""Record types of the iot pipeline: sensor readings and machine-model limits.

``readings([("m1", 61.2, 2.4, 10), ...])`` builds :class:`SensorReading`
records for tests from ``(machine, temperature, vibration, seconds after
start[, model])`` tuples.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

from typing import Any, Iterable, NamedTuple, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import Pattern, Range, register, to_timestamp

__all__ = ["SensorReading", "ModelLimits", "MODEL_LIMITS", "readings"]


@register
class SensorReading(NamedTuple):
    """One reading of a machine's sensors, the input of the iot pipeline."""

    reading_id: str
    machine_id: str
    plant: str
    model: str
    temperature: float  # °C at the bearing housing
    vibration: float  # mm/s RMS velocity
    event_time: Timestamp

    constraints = {
        "reading_id": Pattern(r"\S{1,128}"),
        "machine_id": Pattern(r"\S{1,64}"),
        "model": Pattern(r"\S{1,64}"),
        "temperature": Range(min=-60.0, max=250.0),
        "vibration": Range(min=0.0, max=100.0),
    }


@register
class ModelLimits(NamedTuple):
    """The operating limits of one machine model (reference data)."""

    model: str
    max_temperature: float
    max_vibration: float


#: the limits of the models the generator uses (vibration limits after ISO 10816-3 zone D)
MODEL_LIMITS = (
    ModelLimits("pump-p100", 80.0, 7.1),
    ModelLimits("pump-p200", 85.0, 7.1),
    ModelLimits("fan-f10", 70.0, 4.5),
    ModelLimits("compressor-c5", 95.0, 11.0),
)

_START = to_timestamp("2026-01-01T00:00:00Z")


def readings(rows: Iterable[Sequence[Any]], start: Timestamp = _START, model: str = "pump-p100") -> list[SensorReading]:
    """Readings from ``(machine, temperature, vibration, seconds[, model])`` tuples.

    Ids are ``r0``, ``r1``, ... in order; the plant is fixed so tests only
    spell out what matters.
    """
    return [
        SensorReading(
            reading_id=f"r{i}",
            machine_id=row[0],
            plant="plant-1",
            model=row[4] if len(row) > 4 else model,
            temperature=float(row[1]),
            vibration=float(row[2]),
            event_time=start + row[3],
        )
        for i, row in enumerate(rows)
    ]
