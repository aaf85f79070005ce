"""Public test helpers: build records and event streams for hybridflow transforms.

``transactions([("c1", 10.0, 5), ...])`` makes the fraud pipeline's
:class:`~hybridflow.pipelines.fraud.records.Transaction` records from ``(card,
amount, seconds after start)`` tuples (the running example of the docs; it is
:func:`hybridflow.pipelines.fraud.records.transactions`); :class:`CreateEvents`
is ``beam.Create`` with element timestamps taken from the event-time field;
:func:`event_stream` builds a ``TestStream`` that delivers the same records as
an unbounded input, with watermark moves between groups, or raw payloads
(``(text or bytes, event time)`` pairs) to test parsing from the wire.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import SchemaError
from hybridflow.pipelines.fraud.records import transactions
from hybridflow.schemas import to_timestamp

__all__ = [
    "transactions",
    "CreateEvents",
    "event_stream",
    "EventStream",
    "Watermark",
    "START",
    "batch_pipeline",
    "streaming_pipeline",
    "Collect",
    "collected",
]

START = to_timestamp("2026-01-01T00:00:00Z")


def batch_pipeline(*flags: str):
    """A TestPipeline on the FnApiRunner (Beam's batch engine), chosen explicitly:
    DirectRunner would silently pick Prism, FnApiRunner or the bundle runner."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(options=PipelineOptions(["--runner=FnApiRunner", *flags]))


def streaming_pipeline(*flags: str):
    """A streaming TestPipeline on Beam's bundle-based DirectRunner, the runner
    that executes ``TestStream`` with watermark and processing-time control."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(options=PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming", *flags]))


class CreateEvents(beam.PTransform):
    """``beam.Create`` of records, each timestamped with its event-time field."""

    def __init__(self, records: Sequence[Any], timestamp_field: str = "event_time", record_type: Any = None):
        super().__init__()
        self._records = list(records)
        self._field = timestamp_field
        self._type = record_type or (type(self._records[0]) if self._records else None)

    def expand(self, pbegin):
        field = self._field
        created = pbegin | "Create" >> beam.Create(self._records)
        stamped = created | "EventTime" >> beam.Map(
            lambda r: beam.window.TimestampedValue(r, getattr(r, field))
        )
        if self._type is not None:
            stamped.element_type = self._type
        return stamped


class Watermark:
    """A marker in :func:`event_stream` input: advance the watermark to ``time``."""

    def __init__(self, time: Union[Timestamp, float, str]):
        self.time = to_timestamp(time) if not isinstance(time, Timestamp) else time


def _is_payload(item: Any) -> bool:
    """A raw ``(payload, event_time)`` pair: a plain 2-tuple (not a record) whose payload is text or bytes."""
    return type(item) is tuple and len(item) == 2 and isinstance(item[0], (str, bytes))


def _stamped(item: Any, timestamp_field: str) -> beam.window.TimestampedValue:
    if _is_payload(item):
        payload, time = item
        try:
            return beam.window.TimestampedValue(payload, to_timestamp(time))
        except ValueError as exc:
            raise SchemaError(f"event_stream: event time of payload {payload!r}: {exc}") from None
    if isinstance(item, (str, bytes)):
        raise SchemaError(
            f"event_stream: raw payload {item!r} has no event time; give (payload, event_time) pairs, "
            "e.g. ('{\"id\": 1}', START + 5)"
        )
    return beam.window.TimestampedValue(item, getattr(item, timestamp_field))


def _element_type(items: Sequence[Any]) -> Any:
    """The records' type, or ``str`` / ``bytes`` for raw payloads (``Union`` of both when mixed)."""
    kinds = []
    for item in items:
        if isinstance(item, Watermark):
            continue
        kind = type(item[0]) if _is_payload(item) else type(item)
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        return None
    if set(kinds) == {str, bytes}:
        return Union[str, bytes]
    return kinds[0]


def event_stream(
    items: Iterable[Any],
    timestamp_field: str = "event_time",
    record_type: Any = None,
    processing_time_step: Optional[float] = None,
) -> TestStream:
    """A ``TestStream`` delivering ``items`` in order as an unbounded input.

    ``items`` mixes :class:`Watermark` markers with records, timestamped with
    their event-time field, or raw payloads as ``(payload, event_time)`` pairs
    (text or bytes, as a source such as Kafka or Pub/Sub delivers them, for
    :class:`~hybridflow.transforms.ParseRecords`; the event time is a
    Timestamp, epoch seconds or ISO-8601 text). The watermark goes to
    infinity at the end. With ``processing_time_step`` the processing time
    advances by that many seconds after each element (for processing-time
    triggers).
    """
    items = list(items)
    if record_type is None:
        record_type = _element_type(items)
    coder = beam.coders.registry.get_coder(record_type) if record_type is not None else None
    stream = TestStream(coder=coder) if coder is not None else TestStream()
    for item in items:
        if isinstance(item, Watermark):
            stream.advance_watermark_to(item.time)
        else:
            stream.add_elements([_stamped(item, timestamp_field)])
            if processing_time_step:
                stream.advance_processing_time(processing_time_step)
    # Beam's bundle-based DirectRunner does not hold a downstream global
    # window open for timers that fire only when the watermark jumps to
    # infinity (their output would be dropped), so pass through the end of
    # the global window first, as a real source's watermark would.
    end = GlobalWindow().max_timestamp().micros
    stream.advance_watermark_to(Timestamp(micros=end - end % 1000 - 1000))
    stream.advance_watermark_to_infinity()
    return stream


class EventStream(beam.PTransform):
    """Applies :func:`event_stream` and types its output as ``record_type``
    (default: the records' type, or ``str`` / ``bytes`` for raw payloads).

    Example::

        p | EventStream(transactions([...]) + [Watermark(START + 60)] + ...)
        p | EventStream([('{"id": "a", ...}', START + 5), (b"\\xff", START + 6)]) | ParseRecords(...)
    """

    def __init__(self, items, timestamp_field="event_time", record_type=None, processing_time_step=None):
        super().__init__()
        self._items = list(items)
        self._record_type = record_type or _element_type(self._items)
        self._stream = event_stream(self._items, timestamp_field, self._record_type, processing_time_step)

    def expand(self, pbegin):
        out = pbegin | "TestStream" >> self._stream
        if self._record_type is not None:
            out.element_type = self._record_type
        return out


class _CollectFn(beam.DoFn):
    def __init__(self, directory: str):
        self._directory = directory

    def start_bundle(self):
        self._buffer = []

    def process(self, element):
        self._buffer.append(element)

    def finish_bundle(self):
        if self._buffer:
            import os
            import pickle
            import uuid

            os.makedirs(self._directory, exist_ok=True)
            path = os.path.join(self._directory, f"{uuid.uuid4().hex}.pkl")
            with open(path + ".tmp", "wb") as f:
                pickle.dump(self._buffer, f)
            os.replace(path + ".tmp", path)


class Collect(beam.PTransform):
    """Saves every element under ``directory`` (a local path); read them back
    with :func:`collected` after the pipeline finished. Works on every local
    runner (workers write files; nothing depends on sharing the process).
    Typed Arrow tables of records (the columnar batch path, see
    :mod:`hybridflow.columnar`) are saved as their records."""

    def __init__(self, directory):
        super().__init__()
        self._directory = str(directory)

    def expand(self, pcoll):
        from hybridflow.columnar import ToRecords, is_columnar

        if is_columnar(pcoll):
            pcoll = pcoll | "ToRecords" >> ToRecords()
        return pcoll | "Save" >> beam.ParDo(_CollectFn(self._directory))


def collected(directory) -> list:
    """The elements saved by :class:`Collect` under ``directory``."""
    import glob
    import os
    import pickle

    out: list = []
    for path in sorted(glob.glob(os.path.join(str(directory), "*.pkl"))):
        with open(path, "rb") as f:
            out.extend(pickle.load(f))
    return out
