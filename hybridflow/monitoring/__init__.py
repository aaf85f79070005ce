"""Monitoring, alerting and reporting of hybridflow jobs.

- :mod:`~hybridflow.monitoring.exporter`: live Prometheus metrics of a
  running job (``hybridflow run ... --metrics_port``), names and labels;
- :mod:`~hybridflow.monitoring.job`: one run watched: deadline and its alert,
  ``--metrics_json``;
- :mod:`~hybridflow.monitoring.webhook`: alert delivery to a webhook
  (:class:`PostAlerts`, ``WriteTo("https://...")``), retried;
- :mod:`~hybridflow.monitoring.report`: the HTML report of a batch run's
  outputs (``hybridflow report``);
- ``dashboards/``: a Grafana dashboard over the exporter's metrics
  (:func:`dashboard_path`).
"""

import pathlib

from hybridflow.monitoring.exporter import JobStatus, MetricsExporter, metric_families
from hybridflow.monitoring.job import JobMonitor, deliver_alerts, job_report
from hybridflow.monitoring.webhook import Delivery, PostAlerts, WebhookClient, WebhookError, WriteToWebhook

__all__ = [
    "JobStatus",
    "MetricsExporter",
    "metric_families",
    "JobMonitor",
    "deliver_alerts",
    "job_report",
    "PostAlerts",
    "WriteToWebhook",
    "WebhookClient",
    "WebhookError",
    "Delivery",
    "dashboard_path",
]


def dashboard_path() -> pathlib.Path:
    """The Grafana dashboard JSON shipped with the package."""
    return pathlib.Path(__file__).parent / "dashboards" / "hybridflow.json"
