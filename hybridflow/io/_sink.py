"""What every sink needs from its input: the record type, checked at construction."""

from __future__ import annotations

from typing import Any

from hybridflow.errors import SchemaError
from hybridflow.schemas import fields_of

__all__ = ["resolve_record_type"]


def resolve_record_type(pcoll, record_type: Any, sink: str) -> Any:
    """``record_type`` or the input's element type, if it is a record type.

    Raises :class:`SchemaError` naming ``sink`` and the fix otherwise.
    """
    resolved = record_type or pcoll.element_type
    try:
        fields_of(resolved)
    except SchemaError as exc:
        raise SchemaError(
            f"writing to {sink} needs schema'd records (NamedTuple or beam.Row), got elements of "
            f"type {resolved!r}; pass record_type=... or map to a NamedTuple first"
        ) from exc
    return resolved
