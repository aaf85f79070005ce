"""Alert delivery to a real local HTTP server: retries with backoff on 429/5xx,
Retry-After, the idempotency key, dead letters for what cannot be delivered."""

import json

import apache_beam as beam
import pytest

from hybridflow import Alert, WriteTo
from hybridflow.errors import InvalidUriError
from hybridflow.metrics import query_metrics, step_names
from hybridflow.monitoring import PostAlerts, WebhookClient, WebhookError
from hybridflow.schemas import to_plain
from hybridflow.testing import START, Collect, batch_pipeline, collected
from hybridflow.transforms.alerts import alert_id
from tests.monitoring.services import free_port


def _alert(i: int) -> Alert:
    t = START + 60 * i
    return Alert(alert_id(f"rule{i}", "card-1", t), f"rule{i}", "card-1", 10.0 + i, 5.0, t, None, None, f"alert {i}")


ALERTS = [_alert(i) for i in range(3)]


def test_posts_json_with_the_alert_id_as_idempotency_key(webhook):
    receiver = webhook()
    with WebhookClient(receiver.url) as client:
        delivery = client.post(to_plain(ALERTS[0]), ALERTS[0].alert_id)
    assert (delivery.status, delivery.attempts) == (200, 1)
    [(_, headers, body, _)] = receiver.requests
    assert headers["Idempotency-Key"] == ALERTS[0].alert_id
    assert headers["Content-Type"] == "application/json"
    assert body == to_plain(ALERTS[0])
    assert body["event_time"] == "2026-01-01T00:00:00Z"


def test_a_server_that_fails_twice_gets_the_alert_on_the_third_attempt_with_backoff(webhook):
    receiver = webhook([(503, {}), (500, {}), (200, {})])
    with WebhookClient(receiver.url, retries=4, backoff=0.2) as client:
        delivery = client.post(to_plain(ALERTS[1]), ALERTS[1].alert_id)
    assert (delivery.status, delivery.attempts) == (200, 3)
    times = [t for t, *_ in receiver.requests]
    keys = {headers["Idempotency-Key"] for _, headers, _, _ in receiver.requests}
    assert keys == {ALERTS[1].alert_id}  # every attempt carries the same key
    # urllib3's backoff: the first retry at once, then backoff * 2 = 0.4 s (a lower bound: a busy
    # machine may wait longer, never shorter)
    assert times[2] - times[1] >= 0.35


def test_retry_after_is_honoured_on_429(webhook):
    receiver = webhook([(429, {"Retry-After": "1"}), (200, {})])
    with WebhookClient(receiver.url, retries=2, backoff=0.01) as client:
        assert client.post({"n": 1}, "k1").attempts == 2
    t0, t1 = receiver.requests[0][0], receiver.requests[1][0]
    assert t1 - t0 >= 0.95


def test_final_answers_raise_with_the_dead_letter_reason(webhook):
    failing = webhook([(503, {})])
    rejecting = webhook([(400, {})])
    with WebhookClient(failing.url, retries=2, backoff=0.01) as client:
        with pytest.raises(WebhookError) as err:
            client.post({"n": 1}, "k1")
    assert err.value.reason == "webhook_failed" and err.value.status == 503
    assert len(failing.requests) == 3  # the first attempt and 2 retries
    with WebhookClient(rejecting.url, retries=2, backoff=0.01) as client:
        with pytest.raises(WebhookError) as err:
            client.post({"n": 1}, "k1")
    assert err.value.reason == "webhook_rejected" and len(rejecting.requests) == 1  # a 4xx is final
    with WebhookClient(f"http://127.0.0.1:{free_port()}/nobody", retries=1, backoff=0.01, timeout=2) as client:
        with pytest.raises(WebhookError) as err:
            client.post({"n": 1}, "k1")
    assert err.value.reason == "webhook_unreachable"


def test_bad_urls_are_usage_errors():
    with pytest.raises(InvalidUriError, match="http:// or https://"):
        WebhookClient("ftp://example.com/hook")
    with pytest.raises(InvalidUriError, match="webhook_retries"):
        WriteTo("https://example.com/hook?webhook_retries=many")


def test_post_alerts_in_a_pipeline_delivers_retries_and_dead_letters(webhook, tmp_path):
    flaky = webhook([(503, {}), (503, {}), (200, {})])  # fails twice, then accepts every alert
    down = webhook([(500, {})])
    p = batch_pipeline()
    alerts = p | beam.Create(ALERTS).with_output_types(Alert)
    ok = alerts | "Flaky" >> PostAlerts(flaky.url, retries=3, backoff=0.05)
    lost = alerts | "Down" >> WriteTo(f"webhook+{down.url}?webhook_retries=1&webhook_backoff=0.01")
    ok.delivered | "Delivered" >> Collect(tmp_path / "delivered")
    ok.dead_letters | "NoDead" >> Collect(tmp_path / "not-lost")
    lost | "Dead" >> Collect(tmp_path / "lost")
    result = p.run()
    result.wait_until_finish()

    assert sorted(a.alert_id for a in collected(tmp_path / "delivered")) == sorted(a.alert_id for a in ALERTS)
    assert collected(tmp_path / "not-lost") == []
    assert sorted(b["alert_id"] for b in flaky.accepted()) == sorted(a.alert_id for a in ALERTS)
    dead = collected(tmp_path / "lost")
    assert sorted(d.error_type for d in dead) == ["webhook_failed"] * 3
    assert all("HTTP 500 after 2 attempt(s)" in d.message and d.stage == "WriteToWebhook" for d in dead)
    assert {d.payload for d in dead} == {json.dumps(to_plain(a)) for a in ALERTS}
    m = query_metrics(result, step_names(p))
    assert m.by_step["Flaky/Post"]["webhook_retries"] == 2
    assert m.by_step["Flaky/Post"]["records_out"] == 3
    assert m.by_step["Down/WriteToWebhook/Post"]["dead_letters.webhook_failed"] == 3


def _run_guarded(p, guard: float):
    """Runs ``p`` in a thread; fails if it has not finished after ``guard``
    seconds (a generous ceiling: the bound under test is far below it, and a
    run without the bound would take hours)."""
    import threading

    outcome = {}

    def run():
        try:
            result = p.run()
            result.wait_until_finish()
            outcome["result"] = result
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard)
    assert not thread.is_alive(), f"the pipeline was still running after {guard:.0f}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_webhook_that_never_answers_costs_one_deadline_and_every_alert_is_a_dead_letter(tmp_path, caplog):
    """12 alerts to a server that accepts connections and never answers, with a
    600 s per-attempt timeout and 5 retries (unbounded: 12 x 6 x 600 s), a 2 s
    deadline and 4 POSTs at once: the run ends, 4 connections were open at
    once, every alert is a webhook_timeout dead letter, and the token in the
    URL's path is in no message or log line."""
    import logging

    from tests.monitoring.services import HangingServer

    alerts = [_alert(i) for i in range(12)]
    with HangingServer() as server, caplog.at_level(logging.DEBUG, logger="urllib3"):
        p = batch_pipeline()
        delivery = (
            p
            | beam.Create(alerts, reshuffle=False).with_output_types(Alert)
            | PostAlerts(server.url, timeout=600, retries=5, deadline=2, concurrency=4)
        )
        delivery.delivered | "Delivered" >> Collect(tmp_path / "delivered")
        delivery.dead_letters | "Dead" >> Collect(tmp_path / "dead")
        result = _run_guarded(p, guard=240)
        most_at_once, connections = server.most_at_once, server.connections
    assert collected(tmp_path / "delivered") == []
    dead = collected(tmp_path / "dead")
    assert sorted(json.loads(d.payload)["alert_id"] for d in dead) == sorted(a.alert_id for a in alerts)
    assert {d.error_type for d in dead} == {"webhook_timeout"}
    assert all(d.message.startswith("POST http://127.0.0.1:") and "/***: not delivered within its 2s deadline" in d.message
               for d in dead), dead[0].message
    assert most_at_once == 4  # a bounded pool, posting concurrently
    assert connections <= len(alerts)  # no alert retried past its deadline
    m = query_metrics(result, step_names(p))
    assert m.by_step["PostAlerts/Post"]["dead_letters.webhook_timeout"] == 12
    assert "XXXXSECRETTOKEN" not in caplog.text + "".join(d.message for d in dead)


def test_deadline_and_concurrency_from_the_uri(webhook):
    sink = WriteTo(f"webhook+{webhook().url}?webhook_deadline=5&webhook_concurrency=3&webhook_timeout=1")
    client = sink._sink._client
    assert (client.deadline, client.concurrency, client.timeout) == (5.0, 3, 1.0)
    with pytest.raises(InvalidUriError, match="concurrency >= 1"):
        WriteTo("https://example.com/hook?webhook_concurrency=0")


def test_a_retry_due_after_the_deadline_is_not_waited_for(webhook):
    """Retry-After: 60 with a 1 s deadline: the delivery fails at once as webhook_timeout."""
    receiver = webhook([(503, {"Retry-After": "60"})])
    with WebhookClient(receiver.url, retries=3, max_backoff=120, deadline=1) as client:
        with pytest.raises(WebhookError) as err:
            client.post({"n": 1}, "k1")
    assert err.value.reason == "webhook_timeout" and "past the deadline" in str(err.value)
    assert len(receiver.requests) == 1
