"""The fraud pipeline in streaming on Prism reading transactions from Kinesis (two shards, event time
from the records' field) and writing alerts to DynamoDB, both on moto; compared with the same
pipeline in batch over the same transactions."""

import json

import pytest
from apache_beam.utils.timestamp import Timestamp

from tests.pipelines.test_fraud_services import (
    HISTORY,
    WINDOW,
    batch_expectation,
    live_transactions,
    run_streaming,
)

pytestmark = [pytest.mark.streaming, pytest.mark.slow, pytest.mark.timeout(600)]


def _card(line: str) -> str:
    """The record's card, or one key for the malformed lines (1% of them)."""
    try:
        return str(json.loads(line)["card_id"])
    except (ValueError, KeyError, TypeError):
        return "malformed"


def test_fraud_streaming_from_kinesis_on_prism(tmp_path, prism_flags, s3_server, kinesis_stream, dynamodb_table):
    lines = live_transactions(Timestamp.of(1767225600), count=300)
    expected_alerts, _ = batch_expectation(tmp_path, [line for line, _ in lines])

    stream, alerts_table = kinesis_stream(shards=2), dynamodb_table("alert_id")
    client = s3_server.client("kinesis")
    # partitioned by card, as a card stream is: each card's records are in one shard, in event-time
    # order, so the streaming cooldown (the first alert to arrive per period) keeps the alert that
    # batch keeps (the earliest); records spread over shards by anything else may reach it in
    # another order (docs: ThresholdAlerts' cooldown)
    for i in range(0, len(lines), 100):
        client.put_records(StreamName=stream, Records=[
            {"Data": line.encode(), "PartitionKey": _card(line)} for line, _ in lines[i:i + 100]])
    assert len({r["ShardId"] for r in client.list_shards(StreamName=stream)["Shards"]}) == 2
    dynamodb = s3_server.client("dynamodb")

    def alert_ids():
        return sorted(item["alert_id"]["S"] for item in dynamodb.scan(TableName=alerts_table)["Items"])

    flags = [
        *prism_flags,
        f"--input=kinesis://{stream}?{s3_server.uri_params()}&timestamp_field=event_time",
        f"--history={HISTORY}", f"--window={WINDOW}", f"--output={tmp_path / 'out'}",
        f"--sink=alerts=dynamodb://{alerts_table}?{s3_server.uri_params()}",
    ]
    run_streaming(flags, lambda: len(alert_ids()) >= len(expected_alerts))
    assert alert_ids() == sorted(a.alert_id for a in expected_alerts)
