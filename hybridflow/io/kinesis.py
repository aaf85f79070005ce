"""Kinesis: ``kinesis://STREAM?region=R&endpoint=URL``, read (unbounded or bounded) and write, on boto3.

Why not Beam's cross-language Kinesis IO: ``apache_beam.io.kinesis`` expands
through the shaded ``beam-sdks-java-io-amazon-web-services2-expansion-service``
jar, which the Maven registry here does not serve (``mvn dependency:get
-Dartifact=org.apache.beam:beam-sdks-java-io-amazon-web-services2-expansion-service:2.70.0``
fails: not found), and its Java workers need Docker or a Java worker pool
(as ``kafka://`` does here). A Python splittable DoFn on boto3 runs on every
runner with no JVM (Prism, Flink, Dataflow), is tested against moto's
Kinesis, and lets the source set event time from a record field.

Reading: every shard of the stream (listed when the pipeline starts; shards
created by a later resharding are not followed) is one restriction of a
splittable DoFn, read from its oldest record (``TRIM_HORIZON``) in sequence
order; records of one shard are emitted in that order. The restriction is the
range of sequence numbers still to read, so a runner checkpoint resumes after
the last record emitted (``AFTER_SEQUENCE_NUMBER``). Each record's value
(``bytes``) is emitted with its event time (``event_time=``):

- ``arrival`` (default): the record's ``ApproximateArrivalTimestamp``;
- ``processing``: the time of reading;
- with ``timestamp_field=NAME``: that field of the JSON payload (ISO-8601 or
  epoch seconds). A payload without a readable field keeps its arrival
  time, and ``ParseRecords`` dead-letters it.

A shard's watermark is the latest event time it emitted and, once the shard
is caught up (``MillisBehindLatest`` = 0), the clock, as Kafka's does:
records that arrive later with older event times are late.

Unbounded unless ``max_records=`` / ``max_seconds=`` bound the read: a
bounded read takes each shard until it is caught up, ``max_seconds`` have
passed or ``max_records`` are read; with ``max_records`` the output keeps the
``max_records`` earliest-arriving records of all shards.

Writing sends each record as JSON with partition key ``key_field`` through
``PutRecords`` (up to 500 per call, flushed at the end of each bundle);
records Kinesis rejects (throttling) are sent again with backoff. At least
once: a retried bundle writes its records again. Records of one key go to one
shard, in order, except that a throttled record is re-sent after the later
records of its batch.

Credentials come from boto3's usual chain (environment, profile, role),
never from the URI.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration, Timestamp

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io._batches import send_with_retries
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.uri import EndpointUri
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of, to_json, to_timestamp

__all__ = ["ReadFromKinesis", "WriteToKinesis", "ShardReader", "KinesisRecord", "EVENT_TIMES", "kinesis_client"]

EVENT_TIMES = ("arrival", "processing")
MAX_PUT = 500  # PutRecords' limit
# Kinesis sequence numbers are decimal integers of up to 129 digits: a restriction is [first, END)
END = 10 ** 129


def kinesis_client(region: Optional[str], endpoint: Optional[str]):
    """A boto3 Kinesis client for ``region`` (default: boto3's) and ``endpoint`` (default: AWS)."""
    boto3 = require("boto3", "kinesis:// (Kinesis)", "aws")
    return boto3.client("kinesis", region_name=region or None, endpoint_url=endpoint or None)


def check_stream(stream: str, region: Optional[str], endpoint: Optional[str], uri: str) -> None:
    """One-line ConnectorError if the stream does not exist or the endpoint does not answer."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = kinesis_client(region, endpoint)
    try:
        client.describe_stream_summary(StreamName=stream)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ConnectorError(
                f"{uri}: stream {stream!r} does not exist at {client.meta.endpoint_url}; create it "
                f"(aws kinesis create-stream --stream-name {stream} --shard-count 1) or fix the URI"
            ) from None
        raise ConnectorError(f"{uri}: Kinesis at {client.meta.endpoint_url} refused DescribeStreamSummary "
                             f"({code}); check the credentials and region") from exc
    except BotoCoreError as exc:
        raise ConnectorError(f"{uri}: cannot reach Kinesis at {client.meta.endpoint_url} ({type(exc).__name__}); "
                             "check endpoint= and region=") from exc
    finally:
        client.close()


def list_shards(client, stream: str) -> list[str]:
    """The ids of the stream's open and closed shards, in order."""
    shards, token = [], None
    while True:
        page = client.list_shards(NextToken=token) if token else client.list_shards(StreamName=stream)
        shards += [s["ShardId"] for s in page["Shards"]]
        token = page.get("NextToken")
        if not token:
            return shards


class KinesisRecord:
    """One record read from a shard: ``data``, ``sequence`` (int), ``arrival`` (Timestamp), ``partition_key``."""

    __slots__ = ("data", "sequence", "arrival", "partition_key")

    def __init__(self, data: bytes, sequence: int, arrival: Timestamp, partition_key: str):
        self.data, self.sequence, self.arrival, self.partition_key = data, sequence, arrival, partition_key


class ShardReader:
    """Reads one shard in sequence order from ``after`` (a sequence number; None: the oldest record).

    :meth:`poll` returns ``(records, caught_up)``; ``caught_up`` is true when
    the answer is empty and Kinesis says nothing newer is there
    (``MillisBehindLatest`` = 0), or the shard is closed and read to its end
    (then :attr:`closed` is true). An
    expired iterator is renewed from the last record returned.
    """

    def __init__(self, client, stream: str, shard_id: str, after: Optional[int] = None):
        self._client = client
        self._stream = stream
        self._shard = shard_id
        self._after = after
        self._iterator: Optional[str] = None
        self.closed = False

    @property
    def position(self) -> Optional[int]:
        """The sequence number of the last record returned (or the one to read after)."""
        return self._after

    def _new_iterator(self) -> str:
        if self._after is None:
            kwargs = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": str(self._after)}
        return self._client.get_shard_iterator(StreamName=self._stream, ShardId=self._shard, **kwargs)["ShardIterator"]

    def poll(self, limit: int = 1000) -> tuple[list[KinesisRecord], bool]:
        if self.closed:
            return [], True
        if self._iterator is None:
            self._iterator = self._new_iterator()
        try:
            response = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        except self._client.exceptions.ExpiredIteratorException:
            self._iterator = self._new_iterator()
            response = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        records = [
            KinesisRecord(r["Data"], int(r["SequenceNumber"]), to_timestamp(r["ApproximateArrivalTimestamp"]),
                          r.get("PartitionKey", ""))
            for r in response["Records"]
        ]
        if records:
            self._after = records[-1].sequence
        self._iterator = response.get("NextShardIterator")
        if self._iterator is None:
            self.closed = True
        # caught up: an empty answer at the tip (records put in the same millisecond as the last one
        # returned also count 0 ms behind, so a full answer with 0 does not prove the end)
        return records, self.closed or (not records and response.get("MillisBehindLatest") == 0)


class _EventTime:
    """The event time of a record (see the module doc)."""

    def __init__(self, event_time: str, timestamp_field: Optional[str]):
        self._event_time = event_time
        self._field = timestamp_field

    def __call__(self, record: KinesisRecord) -> Timestamp:
        if self._field is not None:
            try:
                return to_timestamp(json.loads(record.data)[self._field])
            except (ValueError, KeyError, TypeError):
                return record.arrival
        if self._event_time == "processing":
            return Timestamp.now()
        return record.arrival


class _ListShards(beam.DoFn):
    def __init__(self, stream, region, endpoint):
        self._stream, self._region, self._endpoint = stream, region, endpoint

    def process(self, _):
        client = kinesis_client(self._region, self._endpoint)
        try:
            yield from list_shards(client, self._stream)
        finally:
            client.close()


class _ReadShardBounded(beam.DoFn):
    """Bounded: one shard until it is caught up, ``max_seconds`` have passed or ``max_records`` are read."""

    def __init__(self, stream, region, endpoint, stamp, max_records, max_seconds, clock=time.monotonic):
        self._stream, self._region, self._endpoint = stream, region, endpoint
        self._stamp = stamp
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._clock = clock

    def setup(self):
        self._client = kinesis_client(self._region, self._endpoint)

    def process(self, shard_id):
        reader = ShardReader(self._client, self._stream, shard_id)
        deadline = None if self._max_seconds is None else self._clock() + self._max_seconds
        read = 0
        while True:
            records, caught_up = reader.poll()
            for record in records:
                if self._max_records is not None and read >= self._max_records:
                    return
                read += 1
                yield beam.window.TimestampedValue((record.arrival.micros, shard_id, record.sequence, record.data),
                                                   self._stamp(record))
            if caught_up or (deadline is not None and self._clock() >= deadline):
                return
            if not records:
                time.sleep(0.2)

    def teardown(self):
        self._client.close()


class _ShardRestrictions(RestrictionProvider):
    def initial_restriction(self, shard_id):
        return OffsetRange(0, END)

    def create_tracker(self, restriction):
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, shard_id, restriction):
        return 1  # unknown: the shard grows


class _ReadShardUnbounded(beam.DoFn):
    """Unbounded: a splittable DoFn per shard; the restriction is the sequence numbers still to read.

    A shard's reader (and its shard iterator) is kept between calls while it
    stands where the restriction resumes, so a running read costs one
    ``GetRecords`` per poll, within Kinesis' 5 calls per second and shard."""

    POLL_RECORDS = 1000
    IDLE = Duration(seconds=1)

    def __init__(self, stream, region, endpoint, stamp):
        self._stream, self._region, self._endpoint = stream, region, endpoint
        self._stamp = stamp

    def setup(self):
        self._client = kinesis_client(self._region, self._endpoint)
        self._readers: dict = {}

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        shard_id,
        tracker=beam.DoFn.RestrictionParam(_ShardRestrictions()),
        watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ):
        start = tracker.current_restriction().start
        after = start - 1 if start > 0 else None
        reader = self._readers.get(shard_id)
        if reader is None or reader.position != after:
            reader = self._readers[shard_id] = ShardReader(self._client, self._stream, shard_id, after=after)
        records, caught_up = reader.poll(self.POLL_RECORDS)
        for record in records:
            if not tracker.try_claim(record.sequence):
                return
            when = self._stamp(record)
            _advance(watermark, when)
            yield beam.window.TimestampedValue(record.data, when)
        if reader.closed:  # resharded: this shard has ended
            tracker.try_claim(END - 1)
            return
        if caught_up:
            _advance(watermark, Timestamp.now())
        tracker.defer_remainder(Duration() if records and not caught_up else self.IDLE)

    def teardown(self):
        self._client.close()


def _advance(watermark, time: Timestamp) -> None:
    current = watermark.current_watermark()
    if current is None or time > current:
        watermark.set_watermark(time)


class _Earliest(beam.PTransform):
    """The ``count`` earliest-arriving of ``(arrival, shard, sequence, data)`` records, as data with their
    event times."""

    def __init__(self, count: int):
        super().__init__()
        self._count = count

    def expand(self, pcoll):
        return (
            pcoll
            | "WithTime" >> beam.Map(lambda r, t=beam.DoFn.TimestampParam: (r, t))
            | "Earliest" >> beam.combiners.Top.Smallest(self._count, key=lambda rt: rt[0][:3])
            | "Data" >> beam.FlatMap(
                lambda top: [beam.window.TimestampedValue(r[3], t) for r, t in top]).with_output_types(bytes)
        )


class ReadFromKinesis(beam.PTransform):
    """Reads record values (``bytes``) of a Kinesis stream, every shard in sequence order.

    Args:
      stream: the stream name.
      region: the AWS region (default: boto3's configuration).
      endpoint: another endpoint URL (moto, LocalStack) instead of AWS's.
      event_time: ``arrival`` or ``processing`` (see the module doc).
      timestamp_field: a JSON field of the payload to take event time from.
      max_records, max_seconds: bound the read (tests, backfills).
      validate: check at construction that the stream exists.

    Example::

        values = p | ReadFromKinesis("transactions", region="eu-west-1", timestamp_field="event_time")
    """

    def __init__(
        self,
        stream: str,
        region: Optional[str] = None,
        endpoint: Optional[str] = None,
        event_time: str = "arrival",
        timestamp_field: Optional[str] = None,
        max_records: Optional[int] = None,
        max_seconds: Optional[float] = None,
        validate: bool = True,
    ):
        super().__init__()
        self._uri = f"kinesis://{stream}"
        if not stream:
            raise InvalidUriError("kinesis://: name a stream: kinesis://STREAM?region=...")
        if event_time not in EVENT_TIMES:
            raise InvalidUriError(f"{self._uri}: event_time={event_time!r}; use one of {', '.join(EVENT_TIMES)}")
        for name, value in (("max_records", max_records), ("max_seconds", max_seconds)):
            if value is not None and value <= 0:
                raise InvalidUriError(f"{self._uri}: {name}={value} must be positive")
        self._stream = stream
        self._region = region
        self._endpoint = endpoint
        self._stamp = _EventTime(event_time, timestamp_field)
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._validate = validate

    @property
    def bounded(self) -> bool:
        return self._max_records is not None or self._max_seconds is not None

    def expand(self, pbegin):
        if self._validate:
            check_stream(self._stream, self._region, self._endpoint, self._uri)
        shards = (
            pbegin
            | "Start" >> beam.Create([None])
            | "ListShards" >> beam.ParDo(_ListShards(self._stream, self._region, self._endpoint))
            | "Distribute" >> beam.Reshuffle()
        )
        if self.bounded:
            read = shards | "ReadShards" >> beam.ParDo(_ReadShardBounded(
                self._stream, self._region, self._endpoint, self._stamp, self._max_records, self._max_seconds))
            values = (
                read | "Limit" >> _Earliest(self._max_records)
                if self._max_records is not None
                else read | "Values" >> beam.Map(lambda r: r[3]).with_output_types(bytes)
            )
        else:
            values = shards | "ReadShards" >> beam.ParDo(
                _ReadShardUnbounded(self._stream, self._region, self._endpoint, self._stamp)).with_output_types(bytes)
        return values | "CountRead" >> CountElements("records_read")


class _PutRecordsFn(beam.DoFn):
    def __init__(self, uri, stream, region, endpoint, key_field, sleep: Callable[[float], None] = time.sleep):
        self._uri, self._stream, self._region, self._endpoint = uri, stream, region, endpoint
        self._key_field = key_field
        self._sleep = sleep

    def setup(self):
        self._client = kinesis_client(self._region, self._endpoint)
        self._buffer: list = []

    def process(self, record):
        self._buffer.append({"Data": to_json(record).encode("utf-8"),
                             "PartitionKey": str(getattr(record, self._key_field))})
        if len(self._buffer) >= MAX_PUT:
            self._flush()

    def _send(self, entries: list) -> list:
        response = self._client.put_records(StreamName=self._stream, Records=entries)
        if not response.get("FailedRecordCount"):
            return []
        return [entry for entry, result in zip(entries, response["Records"], strict=True) if "ErrorCode" in result]

    def _flush(self):
        entries, self._buffer = self._buffer, []
        if entries:
            send_with_retries(self._send, entries, self._uri,
                              "Kinesis throttled the writes: add shards or lower the rate", sleep=self._sleep)

    def finish_bundle(self):
        self._flush()

    def teardown(self):
        self._client.close()


class WriteToKinesis(beam.PTransform):
    """Writes each record as JSON to a Kinesis stream, partitioned by ``key_field``.

    Args:
      stream: the stream name.
      key_field: the record field used as partition key (records of one key
        go to one shard, in order).
      region: the AWS region (default: boto3's configuration).
      endpoint: another endpoint URL (moto, LocalStack).
      record_type: the record type if the input's element type is not one.
      validate: check at construction that the stream exists.
    """

    def __init__(self, stream: str, key_field: str, region: Optional[str] = None, endpoint: Optional[str] = None,
                 record_type: Any = None, validate: bool = True):
        super().__init__()
        self._uri = f"kinesis://{stream}"
        if not stream:
            raise InvalidUriError("kinesis://: name a stream: kinesis://STREAM?key_field=FIELD")
        if not key_field:
            raise InvalidUriError(f"{self._uri}: add ?key_field=FIELD (the partition key: records of one key "
                                  "stay in order on one shard)")
        self._stream = stream
        self._key_field = key_field
        self._region = region
        self._endpoint = endpoint
        self._record_type = record_type
        self._validate = validate

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        names = [f.name for f in fields_of(record_type)]
        if self._key_field not in names:
            raise InvalidUriError(f"{self._uri}: key_field {self._key_field!r} is not a field ({', '.join(names)})")
        if self._validate:
            check_stream(self._stream, self._region, self._endpoint, self._uri)
        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "PutRecords" >> beam.ParDo(
                _PutRecordsFn(self._uri, self._stream, self._region, self._endpoint, self._key_field))
        )


# --------------------------------------------------------------------------
# URIs: kinesis://STREAM?region=R&endpoint=URL&...


def _stream(endpoint: EndpointUri) -> str:
    if endpoint.path:
        raise InvalidUriError(f"{endpoint.redacted!r}: expected kinesis://STREAM?region=REGION[&endpoint=URL]")
    return endpoint.netloc


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    endpoint.check_params(("region", "endpoint", "event_time", "timestamp_field", "max_records", "max_seconds",
                           "validate"), "kinesis:// sources")
    max_records, max_seconds = endpoint.int_param("max_records"), endpoint.int_param("max_seconds")
    if bounded and max_records is None and max_seconds is None:
        raise InvalidUriError(
            f"{endpoint.redacted!r}: Kinesis is unbounded; add max_records=N or max_seconds=S for a bounded read"
        )
    return ReadFromKinesis(
        _stream(endpoint),
        region=endpoint.param("region"),
        endpoint=endpoint.param("endpoint"),
        event_time=endpoint.param("event_time", "arrival"),
        timestamp_field=endpoint.param("timestamp_field"),
        max_records=max_records,
        max_seconds=max_seconds,
        validate=endpoint.bool_param("validate", True),
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    endpoint.check_params(("region", "endpoint", "key_field", "validate"), "kinesis:// sinks")
    return WriteToKinesis(
        _stream(endpoint),
        key_field=endpoint.param("key_field"),
        region=endpoint.param("region"),
        endpoint=endpoint.param("endpoint"),
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
    )
