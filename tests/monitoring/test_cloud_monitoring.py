"""The Cloud Monitoring dashboard and alert policies for Dataflow jobs, checked
offline: each file parses into the Monitoring API's own message types (the
google-cloud-monitoring-dashboards and google-cloud-monitoring clients' protos,
unknown fields refused), every filter names a Dataflow metric and a counter
hybridflow reports, and the dashboard has the Grafana dashboard's panels."""

import json
import re

import pytest
from google.cloud import monitoring_dashboard_v1 as dashboards
from google.cloud import monitoring_v3 as monitoring

from hybridflow.monitoring import cloud_monitoring_paths, dashboard_path
from hybridflow.monitoring.exporter import counter_names

PATHS = cloud_monitoring_paths()
DATAFLOW_METRICS = {"job/user_counter", "job/elapsed_time", "job/is_failed", "job/system_lag", "job/data_watermark_age"}
# Grafana panel -> the Cloud Monitoring widget that shows the same on Dataflow (Dataflow reports Beam
# counters as running totals, sampled every 60 s: totals, not per-second rates)
SAME_PANEL = {
    "State": "State",
    "Records read": "Records read",
    "Dead letters": "Dead letters",
    "Alerts raised": "Alerts raised",
    "Running for": "Running for",
    "Throughput (records/s)": "Records read and written (total)",
    "Records out per step (records/s)": "Records out per step (total)",
    "Dead letters by reason (records/s)": "Dead letters by reason (total)",
    "Dead-letter rate (% of records read)": "Dead-letter rate (share of records read)",
    "Late records (records/s)": "Late records (total)",
    "Event-time lag, mean per step": "System lag (Dataflow)",
    "Event-time lag, largest so far": "Data watermark age (Dataflow)",
    "Alerts per minute by rule": "Alerts by rule (total)",
    "Alert delivery retries per minute": "Alert delivery retries (total)",
    "Reference rows found (%)": "Reference rows found (share)",
    "Lookup cache hit rate (%)": "Lookup cache hit rate (share)",
}
# Grafana panels with no Dataflow counterpart: the exporter's own health, and the deadline (an alert policy here)
NOT_ON_DATAFLOW = {"Deadline exceeded", "Seconds since the last metrics refresh", "Failed metric reads per minute"}


def _filters(document):
    text = json.dumps(document)
    return re.findall(r'"(?:filter|denominatorFilter)": "((?:[^"\\]|\\.)*)"', text)


def _check_filter(escaped):
    flt = json.loads(f'"{escaped}"')
    (metric,) = re.findall(r'metric\.type="dataflow\.googleapis\.com/([a-z_/]+)"', flt)
    assert metric in DATAFLOW_METRICS, flt
    assert 'resource.type="dataflow_job"' in flt
    for name in re.findall(r'metric\.label\."metric_name"=(?:monitoring\.regex\.full_match\()?"([^"]+)"', flt):
        pattern = name.replace("\\\\", "\\")
        matched = [c for c in counter_names() if re.fullmatch(pattern, c)]
        assert matched, f"{flt}: metric_name {pattern!r} matches no counter hybridflow reports"
    return metric


def test_the_dashboard_is_a_valid_monitoring_dashboard():
    text = PATHS["dashboard"].read_text()
    dashboard = dashboards.types.Dashboard.from_json(text)  # unknown fields raise
    assert dashboard.display_name == "hybridflow on Dataflow"
    tiles = dashboard.mosaic_layout.tiles
    assert tiles and all(t.x_pos + t.width <= dashboard.mosaic_layout.columns for t in tiles)
    metrics = {_check_filter(f) for f in _filters(json.loads(text))}
    assert "job/user_counter" in metrics


def test_the_dashboard_has_the_grafana_panels():
    grafana = json.loads(dashboard_path().read_text())
    grafana_titles = {p["title"] for p in grafana["panels"] if p["type"] != "row"}
    assert grafana_titles == set(SAME_PANEL) | NOT_ON_DATAFLOW
    widgets = [t["widget"] for t in json.loads(PATHS["dashboard"].read_text())["mosaicLayout"]["tiles"]]
    titles = {w["title"] for w in widgets if "sectionHeader" not in w}
    assert titles == set(SAME_PANEL.values())


@pytest.mark.parametrize("name", ["alert_deadline", "alert_dead_letter_rate"])
def test_the_alert_policies_are_valid_alert_policies(name):
    text = PATHS[name].read_text()
    policy = monitoring.types.AlertPolicy.from_json(text)  # unknown fields raise
    (condition,) = policy.conditions
    threshold = condition.condition_threshold
    assert threshold.comparison == monitoring.types.ComparisonType.COMPARISON_GT
    metrics = {_check_filter(f) for f in _filters(json.loads(text))}
    if name == "alert_deadline":
        assert metrics == {"job/elapsed_time"}
    else:
        assert metrics == {"job/user_counter"} and threshold.denominator_filter
        assert 0 < threshold.threshold_value < 1


def test_a_wrong_field_is_refused():
    """The checks above can fail: the parse refuses a field the API does not have."""
    document = json.loads(PATHS["dashboard"].read_text())
    document["mosaicLayout"]["tiles"][1]["widget"]["scorecard"]["thresholdz"] = []
    with pytest.raises(Exception, match="thresholdz"):
        dashboards.types.Dashboard.from_json(json.dumps(document))
