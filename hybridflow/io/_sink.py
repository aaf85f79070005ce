"""What every sink needs from its input: the record type, checked at construction."""

from __future__ import annotations

from typing import Any

from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import SchemaError
from hybridflow.schemas import fields_of

__all__ = ["resolve_record_type", "require_timestamp_field"]


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


def require_timestamp_field(record_type: Any, name: str, what: str, sink: str) -> None:
    """Raises :class:`SchemaError` unless ``name`` is a required Timestamp field of ``record_type``
    (``what`` names the parameter, ``sink`` the sink, in the message)."""
    fields = {f.name: f for f in fields_of(record_type)}
    field = fields.get(name)
    if field is None or field.type is not Timestamp or field.optional or field.is_list:
        raise SchemaError(
            f"{what} for {sink}: it must name a required Timestamp field of the records ({', '.join(fields)})"
        )
