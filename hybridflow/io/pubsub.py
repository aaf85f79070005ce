"""Pub/Sub: ``pubsub://projects/P/topics/T`` and ``pubsub://projects/P/subscriptions/S``.

Thin over Beam's ``ReadFromPubSub`` / ``WriteToPubSub``. Messages carry one
record as JSON (UTF-8) in their data; readers emit the raw data (``bytes``),
typed later by :class:`~hybridflow.transforms.ParseRecords`.

Attributes:

- ``timestamp_attribute``: the writer sets it to the record's event time (the
  ``timestamp_field``, RFC 3339 with microseconds); the reader takes element
  timestamps from it (Beam's ``timestamp_attribute``, which also drives the
  watermark on Dataflow). Without it, the publish time is the timestamp.
- ``id_attribute``: the writer sets it from ``id_field``; the reader drops
  repeated ids within ten minutes. On Dataflow that is Beam's ``id_label``;
  Beam's local runner rejects ``id_label``, so elsewhere it is Beam's
  ``DeduplicatePerKey`` on the attribute (per worker state, processing time).
- ``attributes``: more record fields copied into attributes (as text).

Beam's Python ``WriteToPubSub`` supports ``id_label`` / ``timestamp_attribute``
only on Dataflow, so the writer sets these attributes itself, the same on every
runner.

Runners: Pub/Sub reads run on Beam's bundle-based DirectRunner (which plain
``DirectRunner`` picks for them) and on Dataflow; Prism has no Pub/Sub read
(``beam:transform:pubsub_read:v1`` is an unsupported feature there), so the
reader refuses it with a one-line error. Writes run everywhere.

The emulator: google-cloud-pubsub honours ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from hybridflow.errors import ConnectorError, InvalidOptionError, InvalidUriError, require
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.uri import EndpointUri, accepts
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of, to_json

__all__ = ["ReadFromPubSub", "WriteToPubSub", "DEDUPLICATE_SECONDS"]

DEDUPLICATE_SECONDS = 600  # Pub/Sub's own id_label window on Dataflow
_PATH = re.compile(r"^projects/([^/]+)/(topics|subscriptions)/([^/]+)$")


def _parse_path(uri: str, path: str) -> tuple[str, str]:
    match = _PATH.match(path)
    if not match:
        raise InvalidUriError(
            f"{uri!r}: expected pubsub://projects/PROJECT/topics/TOPIC or "
            "pubsub://projects/PROJECT/subscriptions/SUBSCRIPTION"
        )
    return match.group(2), path


def _runner(pipeline) -> str:
    return str(pipeline.options.view_as(StandardOptions).runner or "DirectRunner")


def _emulator() -> str:
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    return f"the Pub/Sub emulator at {host}" if host else "Pub/Sub"


def _check_exists(uri: str, kind: str, path: str) -> None:
    """One-line ConnectorError when the topic/subscription is missing or Pub/Sub unreachable."""
    pubsub = require("google.cloud.pubsub_v1", f"{uri} (Pub/Sub)", "gcp")
    from google.api_core import exceptions

    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host and not accepts(host):
        raise ConnectorError(f"{uri}: cannot reach {_emulator()}; start it or fix PUBSUB_EMULATOR_HOST")
    try:
        if kind == "topics":
            client = pubsub.PublisherClient()
            client.get_topic(topic=path, timeout=10)
        else:
            client = pubsub.SubscriberClient()
            with client:
                client.get_subscription(subscription=path, timeout=10)
    except exceptions.NotFound:
        what = "topic" if kind == "topics" else "subscription"
        raise ConnectorError(
            f"{uri}: the {what} does not exist in {_emulator()}; create it "
            f"(gcloud pubsub {kind} create ...) or fix the URI"
        ) from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise ConnectorError(
            f"{uri}: cannot reach {_emulator()} ({type(exc).__name__}); check the network, "
            "credentials or PUBSUB_EMULATOR_HOST"
        ) from exc


class ReadFromPubSub(beam.PTransform):
    """Reads message data (``bytes``) from a Pub/Sub topic or subscription; unbounded.

    Args:
      topic: ``projects/P/topics/T`` (Beam creates a temporary subscription),
        or
      subscription: ``projects/P/subscriptions/S``.
      timestamp_attribute: attribute holding the event time (ms since the
        epoch or RFC 3339); default: the publish time.
      id_attribute: attribute holding a unique id; repeats within ten minutes
        are dropped.
      with_attributes: emit Beam ``PubsubMessage`` objects instead of data.
      validate: check at construction that the topic/subscription exists.

    Example::

        lines = p | ReadFromPubSub(subscription="projects/my-proj/subscriptions/txns",
                                   timestamp_attribute="event_time")
    """

    def __init__(
        self,
        topic: Optional[str] = None,
        subscription: Optional[str] = None,
        timestamp_attribute: Optional[str] = None,
        id_attribute: Optional[str] = None,
        with_attributes: bool = False,
        validate: bool = True,
    ):
        super().__init__()
        if (topic is None) == (subscription is None):
            raise InvalidUriError("ReadFromPubSub: give exactly one of topic= or subscription=")
        self._topic = topic
        self._subscription = subscription
        self._timestamp_attribute = timestamp_attribute
        self._id_attribute = id_attribute
        self._with_attributes = with_attributes
        self._validate = validate
        self._uri = f"pubsub://{topic or subscription}"

    def expand(self, pbegin):
        runner = _runner(pbegin.pipeline)
        if "Prism" in runner:
            raise InvalidOptionError(
                f"{self._uri}: Prism cannot read Pub/Sub (Beam's Pub/Sub read is not a Prism feature); "
                "run with --runner=DirectRunner (the bundle-based runner) or on Dataflow"
            )
        if self._validate:
            kind, path = ("topics", self._topic) if self._topic else ("subscriptions", self._subscription)
            _check_exists(self._uri, kind, path)
        require("google.cloud.pubsub_v1", f"{self._uri} (Pub/Sub)", "gcp")
        native_dedupe = "Dataflow" in runner
        needs_attributes = self._with_attributes or (self._id_attribute and not native_dedupe)
        messages = pbegin | "Read" >> beam.io.ReadFromPubSub(
            topic=self._topic,
            subscription=self._subscription,
            id_label=self._id_attribute if native_dedupe else None,
            with_attributes=bool(needs_attributes),
            timestamp_attribute=self._timestamp_attribute,
        )
        if self._id_attribute and not native_dedupe:
            from apache_beam.transforms.deduplicate import DeduplicatePerKey

            attribute = self._id_attribute
            messages = (
                messages
                | "KeyById" >> beam.Map(lambda m: (m.attributes.get(attribute) or m.message_id or "", m)).with_output_types(
                    tuple[str, Any]
                )
                | "Deduplicate" >> DeduplicatePerKey(processing_time_duration=DEDUPLICATE_SECONDS)
                | "DropKey" >> beam.Map(lambda kv: kv[1])
            )
            if not self._with_attributes:
                messages = messages | "Data" >> beam.Map(lambda m: m.data).with_output_types(bytes)
        return messages | "CountRead" >> CountElements("records_read")


class _ToMessage(beam.DoFn):
    def __init__(self, timestamp_attribute, timestamp_field, id_attribute, id_field, attribute_fields):
        self._timestamp_attribute = timestamp_attribute
        self._timestamp_field = timestamp_field
        self._id_attribute = id_attribute
        self._id_field = id_field
        self._attribute_fields = attribute_fields

    def process(self, record):
        from apache_beam.io.gcp.pubsub import PubsubMessage

        attributes = {}
        for name in self._attribute_fields:
            value = getattr(record, name)
            if value is not None:
                attributes[name] = str(value)
        if self._timestamp_attribute:
            attributes[self._timestamp_attribute] = getattr(record, self._timestamp_field).to_rfc3339()
        if self._id_attribute:
            attributes[self._id_attribute] = str(getattr(record, self._id_field))
        yield PubsubMessage(to_json(record).encode("utf-8"), attributes)


class WriteToPubSub(beam.PTransform):
    """Publishes each record as JSON to a Pub/Sub topic, with attributes.

    Args:
      topic: ``projects/P/topics/T``.
      timestamp_attribute: attribute set to the record's ``timestamp_field``
        (RFC 3339, microseconds), for readers' event time.
      timestamp_field: the record's event-time field (default ``event_time``).
      id_attribute: attribute set to the record's ``id_field`` (for readers'
        de-duplication); both or neither.
      id_field: the record field with a unique id.
      attributes: record fields also copied into attributes (as text).
      record_type: the record type if the input's element type is not one.
      validate: check at construction that the topic exists.
    """

    def __init__(
        self,
        topic: str,
        timestamp_attribute: Optional[str] = None,
        timestamp_field: str = "event_time",
        id_attribute: Optional[str] = None,
        id_field: Optional[str] = None,
        attributes: Sequence[str] = (),
        record_type: Any = None,
        validate: bool = True,
    ):
        super().__init__()
        self._uri = f"pubsub://{topic}"
        kind, _ = _parse_path(self._uri, topic)
        if kind != "topics":
            raise InvalidUriError(f"{self._uri}: publish to a topic (pubsub://projects/P/topics/T), not a subscription")
        if bool(id_attribute) != bool(id_field):
            raise InvalidUriError(f"{self._uri}: id_attribute and id_field go together")
        self._topic = topic
        self._timestamp_attribute = timestamp_attribute
        self._timestamp_field = timestamp_field
        self._id_attribute = id_attribute
        self._id_field = id_field
        self._attributes = list(attributes)
        self._record_type = record_type
        self._validate = validate

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        names = {f.name for f in fields_of(record_type)}
        needed = list(self._attributes)
        if self._timestamp_attribute:
            needed.append(self._timestamp_field)
        if self._id_field:
            needed.append(self._id_field)
        missing = [n for n in needed if n not in names]
        if missing:
            raise InvalidUriError(f"{self._uri}: {missing[0]!r} is not a field of the records ({', '.join(sorted(names))})")
        if self._validate:
            _check_exists(self._uri, "topics", self._topic)
        from apache_beam.io.gcp.pubsub import PubsubMessage

        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "ToMessage" >> beam.ParDo(
                _ToMessage(self._timestamp_attribute, self._timestamp_field, self._id_attribute, self._id_field,
                           self._attributes)
            ).with_output_types(PubsubMessage)
            | "Publish" >> beam.io.WriteToPubSub(self._topic, with_attributes=True)
        )


# --------------------------------------------------------------------------
# URIs

_READ_PARAMS = ("timestamp_attribute", "id_attribute", "with_attributes", "validate")
_WRITE_PARAMS = ("timestamp_attribute", "timestamp_field", "id_attribute", "id_field", "attributes", "validate")


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    if bounded:
        raise InvalidUriError(f"{endpoint.redacted!r}: Pub/Sub is unbounded; read it in streaming mode")
    endpoint.check_params(_READ_PARAMS, "pubsub:// sources")
    kind, path = _parse_path(endpoint.redacted, f"{endpoint.netloc}/{endpoint.path}")
    return ReadFromPubSub(
        topic=path if kind == "topics" else None,
        subscription=path if kind == "subscriptions" else None,
        timestamp_attribute=endpoint.param("timestamp_attribute"),
        id_attribute=endpoint.param("id_attribute"),
        with_attributes=endpoint.bool_param("with_attributes", False),
        validate=endpoint.bool_param("validate", True),
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    endpoint.check_params(_WRITE_PARAMS, "pubsub:// sinks")
    return WriteToPubSub(
        f"{endpoint.netloc}/{endpoint.path}",
        timestamp_attribute=endpoint.param("timestamp_attribute"),
        timestamp_field=endpoint.param("timestamp_field", "event_time"),
        id_attribute=endpoint.param("id_attribute"),
        id_field=endpoint.param("id_field"),
        attributes=endpoint.list_param("attributes"),
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
    )
