"""The Prometheus exporter: names and labels, served over HTTP from a real run,
and the Grafana dashboard's queries against what it really emits."""

import json
import re
import time
import urllib.request

import apache_beam as beam
import pytest
from apache_beam.testing import test_stream
from prometheus_client.parser import text_string_to_metric_families

from hybridflow import (
    CardProfile,
    Dedupe,
    Enrich,
    InMemoryLookup,
    ParseRecords,
    ThresholdAlerts,
    Transaction,
    WindowedAggregate,
    WriteTo,
)
from hybridflow.metrics import CountElements, Distribution, MetricsSnapshot, step_names
from hybridflow.monitoring import JobStatus, MetricsExporter, PostAlerts, dashboard_path, metric_families
from hybridflow.schemas import to_json
from hybridflow.testing import START, transactions
from tests.monitoring.conftest import prism_pipeline


def _samples(text):
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def _exposition(families):
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self):
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return generate_latest(registry).decode()


def test_names_and_labels_follow_prometheus_conventions():
    snapshot = MetricsSnapshot(
        {}, {
            "Read/CountRead": {"records_read": 10},
            "Parse/Parse": {"records_in": 10, "records_out": 7, "dead_letters": 3, "dead_letters.invalid_json": 2},
            "Enrich/Join": {"enrich_hits": 5, "enrich_misses": 2, "enrich_cache_hits": 4, "enrich_cache_misses": 3},
            "Alerts/Evaluate": {"alerts": 2, "alerts.velocity": 2},
            "Alerts/Cooldown": {"alerts_suppressed": 1},
            "Dedupe/KeepFirst": {"duplicates": 1, "filtered": 1},
            "Mine/Step": {"my.thing": 4},
        },
        {"Parse/Parse": {"event_time_lag_ms": Distribution(count=4, sum=10_000, min=1000, max=4000)}},
    )
    status = JobStatus("fraud", "streaming", "PrismRunner", "RUNNING", started=100.0, deadline=60.0)
    samples = {(n, tuple(sorted(labels.items()))): v for n, labels, v in _samples(_exposition(
        metric_families(snapshot, status)))}

    def value(name, **labels):
        return samples[(name, tuple(sorted({"pipeline": "fraud", **labels}.items())))]

    assert value("hybridflow_records_total", step="Read/CountRead", outcome="read") == 10
    assert value("hybridflow_records_total", step="Parse/Parse", outcome="out") == 7
    assert value("hybridflow_dead_letters_total", step="Parse/Parse", reason="invalid_json") == 2
    assert value("hybridflow_dead_letters_total", step="Parse/Parse", reason="unspecified") == 1
    assert value("hybridflow_enrich_lookups_total", step="Enrich/Join", result="miss") == 2
    assert value("hybridflow_enrich_cache_requests_total", step="Enrich/Join", result="hit") == 4
    assert value("hybridflow_alerts_total", step="Alerts/Evaluate", rule="velocity") == 2
    assert ("hybridflow_alerts_total", (("pipeline", "fraud"), ("rule", "unspecified"), ("step", "Alerts/Evaluate"))) \
        not in samples  # the total equals the sum of the rules
    assert value("hybridflow_alerts_suppressed_total", step="Alerts/Cooldown") == 1
    assert value("hybridflow_duplicate_records_total", step="Dedupe/KeepFirst") == 1
    assert value("hybridflow_filtered_records_total", step="Dedupe/KeepFirst") == 1
    assert value("hybridflow_my_thing_total", step="Mine/Step") == 4
    assert value("hybridflow_event_time_lag_seconds_count", step="Parse/Parse") == 4
    assert value("hybridflow_event_time_lag_seconds_sum", step="Parse/Parse") == 10.0
    assert value("hybridflow_event_time_lag_max_seconds", step="Parse/Parse") == 4.0
    assert value("hybridflow_pipeline_state", state="RUNNING") == 1
    assert value("hybridflow_pipeline_state", state="DONE") == 0
    assert value("hybridflow_pipeline_info", mode="streaming", runner="PrismRunner") == 1
    assert value("hybridflow_pipeline_deadline_exceeded") == 0
    for name, _ in samples:
        assert re.fullmatch(r"hybridflow_[a-z0-9_]+", name), name


def _dashboard_queries():
    dashboard = json.loads(dashboard_path().read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] for p in panels)
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def dashboard_metric_names(expr):
    return set(re.findall(r"\bhybridflow_[a-z0-9_]+", expr))


def test_the_dashboard_covers_throughput_dead_letters_late_records_lag_and_alerts():
    titles = " | ".join(title for title, _ in _dashboard_queries()).lower()
    for topic in ("throughput", "dead letters", "late records", "event-time lag", "alerts per minute"):
        assert topic in titles
    for title, expr in _dashboard_queries():
        assert dashboard_metric_names(expr), f"{title}: {expr} names no hybridflow metric"


def _every_metric_pipeline(p, receiver_url, out_dir):
    """Every kind of hybridflow metric: reads, dead letters, duplicates, cache
    hits, a late record, a suppressed alert, a retried webhook POST, writes."""
    txns = transactions([("c1", 10.0, 5), ("c1", 900.0, 20), ("c2", 5.0, 30), ("c1", 950.0, 50)])
    stream = (
        test_stream.TestStream(coder=beam.coders.StrUtf8Coder())
        .add_elements([beam.window.TimestampedValue(to_json(t), t.event_time) for t in txns]
                      + [beam.window.TimestampedValue(to_json(txns[0]), txns[0].event_time),
                         beam.window.TimestampedValue("not json", START + 40)])
        .advance_watermark_to(START + 300)
        .add_elements([beam.window.TimestampedValue(to_json(txns[0]._replace(txn_id="late")), START + 10)])
        .advance_watermark_to_infinity()
    )
    lines = p | "Source" >> stream | "CountRead" >> CountElements("records_read")
    parsed = lines | "Parse" >> ParseRecords(Transaction)
    unique = parsed.records | "Dedupe" >> Dedupe("txn_id", within="1h")
    enriched = unique | "Enrich" >> Enrich(
        key="card_id", handler=InMemoryLookup([CardProfile("c1", 12, 40.0, 8.0, ["US"], START)], key="card_id",
                                              cache_ttl="5m"), prefix="p_")
    windows = enriched.records | "Window" >> WindowedAggregate(key="card_id", window="fixed:60s",
                                                               aggregations={"n": "count"})
    alerts = enriched.records | "Big" >> ThresholdAlerts(
        [{"name": "big", "field": "amount", "op": ">=", "threshold": 500}], key="card_id", cooldown="10m")
    _ = alerts | "Post" >> PostAlerts(receiver_url, retries=3, backoff=0.05)
    _ = windows.aggregates | "Write" >> WriteTo(f"{out_dir}/aggregates.jsonl?every=1")


@pytest.mark.prism
@pytest.mark.streaming
def test_every_dashboard_query_names_a_metric_the_exporter_serves(prism_flags, webhook, tmp_path):
    receiver = webhook([(503, {}), (200, {})])
    p = prism_pipeline(prism_flags, "--streaming")
    _every_metric_pipeline(p, receiver.url, tmp_path)
    status = JobStatus("demo", "streaming", "PrismRunner", started=time.time(), deadline=600.0)
    with MetricsExporter(status, port=0, address="127.0.0.1", interval=0.5) as exporter:
        result = p.run()
        exporter.attach(result, step_names(p))
        result.wait_until_finish()
        exporter.refresh()
        with urllib.request.urlopen(exporter.url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
    samples = _samples(text)
    served = {name for name, _, _ in samples}
    for title, expr in _dashboard_queries():
        missing = dashboard_metric_names(expr) - served
        assert not missing, f"panel {title!r} queries {sorted(missing)}, which the exporter does not serve"

    def total(name, **labels):
        return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))

    assert total("hybridflow_records_total", outcome="read") == 7
    assert total("hybridflow_dead_letters_total", reason="invalid_json") == 1
    assert total("hybridflow_duplicate_records_total") == 1
    assert total("hybridflow_late_records_total") == 1
    assert total("hybridflow_alerts_total", rule="big") == 2
    assert total("hybridflow_alerts_suppressed_total") == 1
    assert total("hybridflow_webhook_retries_total") == 1
    # c1 and c2 miss at least once; more than once when the runner uses more
    # than one DoFn instance (each has its own cache); every lookup is counted
    misses = total("hybridflow_enrich_cache_requests_total", result="miss")
    hits = total("hybridflow_enrich_cache_requests_total", result="hit")
    assert misses >= 2 and hits + misses == 5, (hits, misses)
    assert total("hybridflow_records_total", outcome="written") == 2  # windows c1 [0, 60) and c2 [0, 60)
    assert len(receiver.accepted()) == 1


def test_the_endpoint_is_for_this_host_only_unless_asked_and_says_where_it_listens():
    """No authentication, so 127.0.0.1 by default; the line names the bound
    address; a public address is served with a warning."""
    import io

    from apache_beam.options.pipeline_options import PipelineOptions

    from hybridflow.monitoring import JobMonitor

    err = io.StringIO()
    with JobMonitor("fraud", PipelineOptions(["--metrics_port=0"]), err=err) as monitor:
        exporter = monitor.exporter
        assert (exporter.address, exporter.public) == ("127.0.0.1", False)
        assert err.getvalue() == f"hybridflow: serving metrics at http://127.0.0.1:{exporter.port}/metrics\n"
        assert urllib.request.urlopen(exporter.url, timeout=10).status == 200
    err = io.StringIO()
    with JobMonitor("fraud", PipelineOptions(["--metrics_port=0", "--metrics_address=0.0.0.0"]), err=err) as monitor:
        exporter = monitor.exporter
        lines = err.getvalue().splitlines()
        assert lines[0] == f"hybridflow: serving metrics at http://0.0.0.0:{exporter.port}/metrics"
        assert "no authentication and listens on 0.0.0.0" in lines[1] and "docs/security.md" in lines[1]
        assert urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10).status == 200
