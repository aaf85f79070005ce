"""Records as Elastic Common Schema (ECS) documents: the ``ecs`` file format.

``WriteTo("out/alerts.ecs")`` (or ``--output_format ecs``) writes one JSON
document per line in the shape Filebeat, Logstash and Kibana expect, so
shipping alerts and aggregates to Elasticsearch is a Filebeat ``filestream``
input with the ``ndjson`` parser and no processors::

    {"@timestamp": "2026-01-01T00:01:00Z",
     "ecs": {"version": "8.11.0"},
     "event": {"kind": "alert", "module": "hybridflow", "dataset": "hybridflow.alerts"},
     "message": "velocity card_id=c1: txn_count=12 >= 10",
     "rule": {"name": "velocity"},
     "hybridflow": {"alert_id": "...", "rule": "velocity", "key": "c1", ...}}

- ``@timestamp``: the record's ``event_time``, else its ``window_end``, else
  its first other Timestamp field that is set (ECS requires one);
- ``event.kind``: ``alert`` for alerts (records with ``alert_id`` and
  ``rule``), ``pipeline_error`` for dead letters (``error_type`` and
  ``payload``), ``metric`` for window aggregates (``window_end`` without an
  ``event_time``), ``event`` otherwise;
- ``event.dataset``: ``hybridflow.<name>``, the sink's file name
  (``alerts``, ``aggregates`` ...);
- ``message`` and ``rule.name`` from the record's ``message`` / ``rule``;
- ``hybridflow``: every field of the record, as in the JSON-lines format.

ECS is an output format: read such files back as ``format=jsonl`` if needed.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import to_plain

__all__ = ["ECS_VERSION", "to_ecs", "ecs_json", "event_kind"]

ECS_VERSION = "8.11.0"


def event_kind(fields: Mapping[str, Any]) -> str:
    """The ECS ``event.kind`` of a record with these fields (see the module doc)."""
    if "alert_id" in fields and "rule" in fields:
        return "alert"
    if "error_type" in fields and "payload" in fields:
        return "pipeline_error"
    if "window_end" in fields and "event_time" not in fields:
        return "metric"
    return "event"


def _timestamp(values: Mapping[str, Any]) -> Optional[Timestamp]:
    for name in ("event_time", "window_end"):
        if isinstance(values.get(name), Timestamp):
            return values[name]
    return next((v for v in values.values() if isinstance(v, Timestamp)), None)


def to_ecs(record: Any, dataset: str) -> dict:
    """The ECS document of ``record`` written to the dataset ``hybridflow.<dataset>``.

    >>> from hybridflow.schemas import Alert
    >>> doc = to_ecs(Alert("a1", "velocity", "c1", 12.0, 10.0, Timestamp.of(60), None, None, "12 >= 10"), "alerts")
    >>> doc["@timestamp"], doc["event"]["kind"], doc["rule"], doc["hybridflow"]["key"]
    ('1970-01-01T00:01:00Z', 'alert', {'name': 'velocity'}, 'c1')
    """
    values = record._asdict() if hasattr(record, "_asdict") else dict(record)
    time = _timestamp(values) or Timestamp.now()
    doc: dict = {
        "@timestamp": time.to_rfc3339(),
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": event_kind(values), "module": "hybridflow", "dataset": f"hybridflow.{dataset}"},
    }
    if isinstance(values.get("message"), str):
        doc["message"] = values["message"]
    if doc["event"]["kind"] == "alert":
        doc["rule"] = {"name": values["rule"]}
    doc["hybridflow"] = to_plain(values)
    return doc


def ecs_json(record: Any, dataset: str) -> str:
    """One JSON line of :func:`to_ecs`."""
    return json.dumps(to_ecs(record, dataset), ensure_ascii=False, allow_nan=False)
