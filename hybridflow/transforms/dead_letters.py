"""The dead-letter contract shared by every hybridflow transform.

A transform that can fail on data returns a :class:`Outputs` with a main
output and ``dead_letters``: a PCollection of
:class:`~hybridflow.schemas.DeadLetter`. Each dead letter is counted twice, in
``hybridflow/dead_letters`` and in ``hybridflow/dead_letters.<reason>``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.metrics import counter
from hybridflow.schemas import DeadLetter, to_plain

__all__ = ["DEAD_LETTERS", "DeadLetterCounter", "Unreadable", "payload_text", "make_dead_letter"]

DEAD_LETTERS = "dead_letters"


class Unreadable(NamedTuple):
    """A payload that a reader could not turn into a value (e.g. a CSV row
    csv cannot read): :class:`~hybridflow.transforms.ParseRecords` makes it a
    dead letter with this ``reason`` and ``message``; ``payload`` is the raw text."""

    reason: str
    message: str
    payload: str


def payload_text(element: Any) -> str:
    """The original input as text, for a dead letter's ``payload``."""
    if isinstance(element, Unreadable):
        return element.payload
    if isinstance(element, str):
        return element
    if isinstance(element, bytes):
        return element.decode("utf-8", "backslashreplace")
    try:
        if isinstance(element, dict) or hasattr(element, "_asdict"):
            return json.dumps(to_plain(element), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        pass
    return repr(element)


def make_dead_letter(stage: str, reason: str, message: str, element: Any) -> DeadLetter:
    return DeadLetter(
        stage=stage,
        error_type=reason,
        message=message,
        payload=payload_text(element),
        failed_at=Timestamp.now(),
    )


class DeadLetterCounter:
    """Counts dead letters per reason; create it in ``setup()``."""

    def __init__(self):
        self._total = counter("dead_letters")
        self._by_reason: dict[str, Any] = {}

    def dead_letter(self, stage: str, reason: str, message: str, element: Any):
        """Counts and returns the tagged dead-letter output for ``element``."""
        self._total.inc()
        c = self._by_reason.get(reason)
        if c is None:
            c = self._by_reason[reason] = counter(f"dead_letters.{reason}")
        c.inc()
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(stage, reason, message, element))
