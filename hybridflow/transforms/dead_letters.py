"""The dead-letter contract shared by every hybridflow transform.

A transform that can fail on data returns a :class:`Outputs` with a main
output and ``dead_letters``: a PCollection of
:class:`~hybridflow.schemas.DeadLetter`. Each dead letter is counted twice, in
``hybridflow/dead_letters`` and in ``hybridflow/dead_letters.<reason>``.

Every dead letter is made by :func:`make_dead_letter`, the one place where a
record's content becomes dead-letter text: it masks the values of the
record type's sensitive fields (``sensitive = (...)`` on the record class,
:class:`hybridflow.redaction.FieldRedactor`) in the payload and the message.
A stage that reads raw payloads passes the redactor of the type it parses
into; for a record the redactor of its own type applies.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Optional

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


def make_dead_letter(stage: str, reason: str, message: str, element: Any, redactor: Optional[Any] = None) -> DeadLetter:
    """The dead letter of ``element``; the values of sensitive fields are
    masked in its payload and message by ``redactor`` (a
    :class:`~hybridflow.redaction.FieldRedactor`; default: that of the
    element's own record type)."""
    from hybridflow.redaction import redactor_of

    if redactor is None:
        redactor = redactor_of(type(element)) if hasattr(element, "_fields") else None
    if redactor is None or not redactor.active:
        payload = payload_text(element)
    else:
        payload, message = redactor.payload(element), redactor.message(message, element)
    return DeadLetter(
        stage=stage,
        error_type=reason,
        message=message,
        payload=payload,
        failed_at=Timestamp.now(),
    )


class DeadLetterCounter:
    """Counts dead letters per reason; create it in ``setup()``. ``redactor``
    masks sensitive fields of raw payloads (see :func:`make_dead_letter`)."""

    def __init__(self, redactor: Optional[Any] = None):
        self._total = counter("dead_letters")
        self._by_reason: dict[str, Any] = {}
        self._redactor = redactor

    def dead_letter(self, stage: str, reason: str, message: str, element: Any):
        """Counts and returns the tagged dead-letter output for ``element``."""
        self._total.inc()
        c = self._by_reason.get(reason)
        if c is None:
            c = self._by_reason[reason] = counter(f"dead_letters.{reason}")
        c.inc()
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(stage, reason, message, element, self._redactor))
