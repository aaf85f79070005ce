"""``synthetic://vitals``: a deterministic stream of bedside observations.

A ward population of ``patients``, each with an identity (a synthetic name,
MRN and date of birth: no real person) and their own normal levels of each
vital sign; the patients are observed in turn (record ``i`` is patient
``i % patients``). A share of them (``deteriorating``) starts to
deteriorate ``deteriorate_after`` seconds into the stream, the pattern of
sepsis: heart rate, respiration rate, temperature and glucose climb, SpO2 and
systolic blood pressure fall, fully so two hours later (times ``pace``).
Monitors report heart rate, SpO2, respiration rate and blood pressure as
whole numbers, temperature and glucose to one decimal. On top: the
disorder, lateness and malformed records every synthetic stream has
(:class:`~hybridflow.io.synthetic.SyntheticStream`); a malformed record may
carry a bad MRN or date of birth, so PHI reaches the dead letters (masked).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from hybridflow.io.synthetic import SyntheticStream, draw, duration_field, event_text, index_hash, share_field, unit

__all__ = ["SyntheticVitals", "Patient", "DETERIORATION"]

_WARDS = ("ward-medical", "ward-surgical", "ward-respiratory")
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi", "Lars",
          "Maya", "Nils", "Olga", "Pavel", "Rosa", "Sami", "Tariq", "Uma")
_LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Brennan", "Varga", "Silva", "Novak",
         "Achterberg", "Rahman", "Castellano", "Ivanova", "Mbeki", "Sorensen", "Quispe", "Yilmaz", "Duarte", "Weiss")
# salts of the patient population (per patient) and of each record (per index)
_SALT_FIRST, _SALT_LAST, _SALT_MRN, _SALT_DOB, _SALT_WARD = 201, 202, 203, 204, 205
_SALT_LEVEL = 210  # + the vital's index
_SALT_NOISE = 11  # + 0..5: three pairs of uniform draws, six normal numbers
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: per vital: (lowest normal level, width of the normal range, noise SD, change when fully deteriorated)
DETERIORATION = {
    "heart_rate": (62.0, 24.0, 3.0, +45.0),
    "spo2": (96.0, 3.0, 0.7, -8.0),
    "resp_rate": (13.0, 4.0, 1.0, +14.0),
    "temperature": (36.5, 0.6, 0.15, +2.2),
    "systolic_bp": (115.0, 20.0, 5.0, -40.0),
    "glucose": (4.8, 1.8, 0.3, +6.0),
}
_FULL_AFTER = 7200.0  # seconds of deterioration (at pace 1) to reach the full change


@dataclasses.dataclass(frozen=True)
class Patient:
    """One patient of the population: identity, ward, normal levels, whether they deteriorate."""

    patient_id: str
    patient_name: str
    mrn: str
    date_of_birth: str
    ward: str
    normal: tuple  # normal level of each vital, in the order of DETERIORATION
    deteriorates: bool


def patient(population: int, k: int, deteriorating: float) -> Patient:
    """Patient ``k`` of the population ``population``."""
    def u(salt):
        return unit(population, k, salt)

    year = 1935 + int(u(_SALT_DOB) * 65)
    day = int(unit(population, k, _SALT_DOB + 50) * 365)
    month, mday = 1 + day // 31 % 12, 1 + day % 28
    normal = tuple(round(low + width * u(_SALT_LEVEL + n), 1)
                   for n, (low, width, _, _) in enumerate(DETERIORATION.values()))
    return Patient(
        patient_id=f"patient-{k:04d}",
        patient_name=f"{_FIRST[int(u(_SALT_FIRST) * len(_FIRST))]} {_LAST[int(u(_SALT_LAST) * len(_LAST))]}",
        mrn=f"MRN{int(u(_SALT_MRN) * 9_000_000) + 1_000_000:07d}",
        date_of_birth=f"{year:04d}-{month:02d}-{mday:02d}",
        ward=_WARDS[int(u(_SALT_WARD) * len(_WARDS))],
        normal=normal,
        # a low-discrepancy sequence: the share is ``deteriorating`` in a small population too
        deteriorates=((k + 1) * _GOLDEN) % 1.0 < deteriorating,
    )


@dataclasses.dataclass(frozen=True)
class SyntheticVitals(SyntheticStream):
    """``synthetic://vitals``: bedside observations of a ward population.

    Args:
      population: seed of the patients (identities, wards, normal levels);
        defaults to ``seed``. Two streams with different seeds and the same
        population describe the same patients (history vs live).
      patients: how many patients; they are observed in turn.
      deteriorating: share of the patients who deteriorate (0 for a clean
        history to compute baselines from).
      deteriorate_after: seconds of event time after the stream's start
        before the deterioration begins.
      pace: how fast deteriorating patients worsen, as a multiple of the
        default (the full change in two hours); 120 shows it in a minute.
      (and the parameters of every stream: see SyntheticStream)
    """

    stream = "vitals"

    patients: int = 40
    deteriorating: float = share_field(0.1)
    deteriorate_after: float = duration_field(3600.0)
    pace: float = 1.0
    population: Optional[int] = None

    def check(self) -> list[str]:
        problems = [f"patients={self.patients} must be >= 1"] if self.patients < 1 else []
        return problems + ([f"pace={self.pace} must be >= 0"] if not self.pace >= 0 else [])

    def patient(self, k: int) -> Patient:
        """Patient ``k`` of this stream's population."""
        return patient(self.seed if self.population is None else self.population, k, self.deteriorating)

    def record(self, i: int, event_seconds: float, cache: dict) -> str:
        h = index_hash(self.seed, i)
        k = i % self.patients
        p = cache.get(k)
        if p is None:
            p = cache[k] = self.patient(k)
        progress = 0.0
        if p.deteriorates:
            progress = min(1.0, self.pace * max(0.0, i / self.rate - self.deteriorate_after) / _FULL_AFTER)
        noise = []
        for pair in range(3):  # Box-Muller: two normal numbers per pair of uniform draws
            radius = math.sqrt(-2.0 * math.log(max(draw(h, _SALT_NOISE + 2 * pair), 1e-12)))
            angle = 2 * math.pi * draw(h, _SALT_NOISE + 2 * pair + 1)
            noise += [radius * math.cos(angle), radius * math.sin(angle)]
        values = {}
        for n, (name, (_, _, sd, change)) in enumerate(DETERIORATION.items()):
            values[name] = p.normal[n] + change * progress + sd * noise[n]
        record = {
            "observation_id": f"o{self.seed}-{i:010d}",
            "patient_id": p.patient_id,
            "patient_name": p.patient_name,
            "mrn": p.mrn,
            "date_of_birth": p.date_of_birth,
            "ward": p.ward,
            "heart_rate": round(values["heart_rate"]),
            "spo2": min(100, round(values["spo2"])),
            "resp_rate": max(4, round(values["resp_rate"])),
            "temperature": round(values["temperature"], 1),
            "systolic_bp": round(values["systolic_bp"]),
            "glucose": round(max(values["glucose"], 1.0), 1),
            "event_time": event_text(self.displaced(i, event_seconds, hashed=h)),
        }
        bad = [("heart_rate", "n/a"), ("spo2", 140), ("mrn", p.mrn[3:]), ("date_of_birth", "31/02/1961"),
               ("event_time", "yesterday")]
        return self.malformed_text(i, record, missing="patient_id", bad=bad, hashed=h)
