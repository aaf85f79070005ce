"""Record types of the health pipeline: bedside vital signs with the
patient's identifying data, and the scored observation the pipeline works on.

:class:`VitalSigns` is what a bedside monitor feed delivers: every
observation carries the patient's name, medical record number (MRN) and
date of birth, as an HL7 feed's patient segment does. Those three fields
are protected health information (PHI): the class names them in
``sensitive``, so hybridflow masks their values in dead letters and
messages (see docs/security.md). The pipeline's first step keeps only what
scoring needs (:class:`ScoredVitals`, no PHI), so no output but the input's
own dead letters ever sees them.

``vitals([("p1", 72, 97, 16, 36.8, 122, 5.4, 10), ...])`` builds
:class:`VitalSigns` records for tests from ``(patient, heart rate, SpO2,
resp rate, temperature, systolic BP, glucose, seconds after start)`` tuples.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

from typing import Any, Iterable, NamedTuple, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import Pattern, Range, register, to_timestamp

__all__ = ["VitalSigns", "ScoredVitals", "PHI_FIELDS", "VITALS", "vitals"]

#: the fields of a VitalSigns record that identify the patient
PHI_FIELDS = ("patient_name", "mrn", "date_of_birth")
#: the vital signs of an observation, in order
VITALS = ("heart_rate", "spo2", "resp_rate", "temperature", "systolic_bp", "glucose")


@register
class VitalSigns(NamedTuple):
    """One set of bedside observations of a patient, the input of the health pipeline."""

    observation_id: str
    patient_id: str  # the feed's pseudonymous patient key
    patient_name: str  # PHI
    mrn: str  # PHI: medical record number
    date_of_birth: str  # PHI: YYYY-MM-DD
    ward: str
    heart_rate: float  # beats/min
    spo2: float  # % oxygen saturation
    resp_rate: float  # breaths/min
    temperature: float  # °C
    systolic_bp: float  # mmHg
    glucose: float  # mmol/L
    event_time: Timestamp

    constraints = {
        "observation_id": Pattern(r"\S{1,128}"),
        "patient_id": Pattern(r"\S{1,64}"),
        "mrn": Pattern(r"MRN[0-9]{7}"),
        "date_of_birth": Pattern(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"),
        "heart_rate": Range(min=0.0, max=300.0),
        "spo2": Range(min=0.0, max=100.0),
        "resp_rate": Range(min=0.0, max=80.0),
        "temperature": Range(min=25.0, max=45.0),
        "systolic_bp": Range(min=0.0, max=300.0),
        "glucose": Range(min=0.0, max=60.0),
    }
    sensitive = PHI_FIELDS


@register
class ScoredVitals(NamedTuple):
    """An observation without the patient's identifying data, with its
    early-warning score (:func:`~hybridflow.pipelines.health.scoring.early_warning_score`)."""

    observation_id: str
    patient_id: str
    ward: str
    heart_rate: float
    spo2: float
    resp_rate: float
    temperature: float
    systolic_bp: float
    glucose: float
    ews: int
    event_time: Timestamp


_START = to_timestamp("2026-01-01T00:00:00Z")


def vitals(rows: Iterable[Sequence[Any]], start: Timestamp = _START) -> list[VitalSigns]:
    """Observations from ``(patient, heart_rate, spo2, resp_rate, temperature,
    systolic_bp, glucose, seconds)`` tuples; ids ``o0``, ``o1``, ...; the
    identifying fields are fixed placeholders so tests spell out only what matters."""
    return [
        VitalSigns(
            observation_id=f"o{i}",
            patient_id=row[0],
            patient_name="Test Patient",
            mrn="MRN0000000",
            date_of_birth="1960-01-01",
            ward="ward-1",
            heart_rate=float(row[1]),
            spo2=float(row[2]),
            resp_rate=float(row[3]),
            temperature=float(row[4]),
            systolic_bp=float(row[5]),
            glucose=float(row[6]),
            event_time=start + row[7],
        )
        for i, row in enumerate(rows)
    ]
