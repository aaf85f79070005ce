"""``synthetic://readings``: a deterministic stream of machine sensor readings.

A fleet of machines (``machines``) in three plants, each of one of the models
of :data:`~hybridflow.pipelines.iot.records.MODEL_LIMITS`, with its own normal
temperature and vibration; the machines report in turn (record ``i`` is
machine ``i % machines``). A share of the machines (``drifting``) starts to
wear ``drift_after`` seconds into the stream: temperature and vibration
climb steadily from there (6-14 °C and 1.2-2.8 mm/s per hour, times ``wear``), so they
drift from their own baseline first and pass their model's limit later. On
top: the disorder, lateness and malformed records every synthetic stream has
(:class:`~hybridflow.io.synthetic.SyntheticStream`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from hybridflow.io.synthetic import SyntheticStream, draw, duration_field, event_text, index_hash, share_field, unit
from hybridflow.pipelines.iot.records import MODEL_LIMITS

__all__ = ["SyntheticReadings", "Machine"]

_PLANTS = ("plant-north", "plant-south", "plant-east")
# salts of the machine population (per machine) and of each record (per index)
_SALT_MODEL, _SALT_PLANT, _SALT_TEMP, _SALT_VIB, _SALT_RATE = 101, 102, 103, 104, 106
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_SALT_NOISE1, _SALT_NOISE2 = 11, 12
_TEMPERATURE_SD, _VIBRATION_SD = 1.2, 0.12  # sensor noise
_MAX_WEAR = 40.0  # °C over normal (8 mm/s) where a worn machine's protection trips: it climbs no further


@dataclasses.dataclass(frozen=True)
class Machine:
    """One machine of the fleet: where, what, its normal levels, its wear."""

    machine_id: str
    plant: str
    model: str
    temperature: float  # normal level, °C
    vibration: float  # normal level, mm/s
    drift_per_hour: float  # 0 for a healthy machine, else 6-14 °C per hour (vibration: a fifth of it, mm/s)


def machine(population: int, k: int, drifting: float) -> Machine:
    """Machine ``k`` of the fleet of ``population``: a function of both, and
    of ``drifting`` for whether it wears."""
    limits = MODEL_LIMITS[int(unit(population, k, _SALT_MODEL) * len(MODEL_LIMITS))]
    # normal levels well under the model's limits: 12-22 °C below, and 45-65 % of the vibration limit
    temperature = limits.max_temperature - 12.0 - 10.0 * unit(population, k, _SALT_TEMP)
    vibration = limits.max_vibration * (0.25 + 0.2 * unit(population, k, _SALT_VIB))
    # a low-discrepancy sequence, not a random draw: the share of worn machines is
    # ``drifting`` in a small fleet too, and they are spread over the fleet
    wears = ((k + 1) * _GOLDEN) % 1.0 < drifting
    return Machine(
        machine_id=f"machine-{k:04d}",
        plant=_PLANTS[int(unit(population, k, _SALT_PLANT) * len(_PLANTS))],
        model=limits.model,
        temperature=round(temperature, 1),
        vibration=round(vibration, 2),
        drift_per_hour=round(6.0 + 8.0 * unit(population, k, _SALT_RATE), 2) if wears else 0.0,
    )


@dataclasses.dataclass(frozen=True)
class SyntheticReadings(SyntheticStream):
    """``synthetic://readings``: sensor readings of a fleet of machines.

    Args:
      population: seed of the fleet (models, plants, normal levels, pace of
        wear); defaults to ``seed``. Two streams with different seeds
        and the same population describe the same machines (history vs live).
      machines: size of the fleet; they report in turn.
      drifting: share of the machines that start to wear (0 for a clean
        history to compute baselines from).
      drift_after: seconds of event time after the stream's start before
        the wear begins.
      wear: how fast worn machines drift, as a multiple of the realistic
        pace (6-14 °C and 1.2-2.8 mm/s per hour); 60 shows an hour of wear
        in a minute of a live demo.
      (and the parameters of every stream: see SyntheticStream)
    """

    stream = "readings"

    machines: int = 40
    drifting: float = share_field(0.1)
    drift_after: float = duration_field(3600.0)
    wear: float = 1.0
    population: Optional[int] = None

    def check(self) -> list[str]:
        problems = [f"machines={self.machines} must be >= 1"] if self.machines < 1 else []
        return problems + ([f"wear={self.wear} must be >= 0"] if not self.wear >= 0 else [])

    def machine(self, k: int) -> Machine:
        """Machine ``k`` of this stream's fleet."""
        return machine(self.seed if self.population is None else self.population, k, self.drifting)

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        h = index_hash(self.seed, i)
        k = i % self.machines
        m = cache.get(k)
        if m is None:
            m = cache[k] = self.machine(k)
        hours_worn = self.wear * max(0.0, i / self.rate - self.drift_after) / 3600.0
        wear = min(m.drift_per_hour * hours_worn, _MAX_WEAR)
        # two normal draws (Box-Muller) for the sensor noise
        radius = math.sqrt(-2.0 * math.log(max(draw(h, _SALT_NOISE1), 1e-12)))
        angle = 2 * math.pi * draw(h, _SALT_NOISE2)
        temperature = m.temperature + wear + _TEMPERATURE_SD * radius * math.cos(angle)
        vibration = m.vibration + wear / 5.0 + _VIBRATION_SD * radius * math.sin(angle)
        record = {
            "reading_id": f"r{self.seed}-{i:010d}",
            "machine_id": m.machine_id,
            "plant": m.plant,
            "model": m.model,
            "temperature": round(temperature, 2),
            "vibration": round(max(vibration, 0.0), 3),
            "event_time": event_text(self.displaced(i, event_seconds, hashed=h)),
        }
        bad = [("temperature", "n/a"), ("vibration", -1.0), ("event_time", "yesterday")]
        return self.malformed_text(i, record, missing="machine_id", bad=bad, hashed=h)
