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
  (:func:`dashboard_path`); for jobs on Dataflow, a Cloud Monitoring dashboard
  over the job's Beam counters and alert policies for the deadline and the
  dead-letter rate (:func:`cloud_monitoring_paths`).
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
    "cloud_monitoring_paths",
]


def dashboard_path() -> pathlib.Path:
    """The Grafana dashboard JSON shipped with the package."""
    return pathlib.Path(__file__).parent / "dashboards" / "hybridflow.json"


def cloud_monitoring_paths() -> dict[str, pathlib.Path]:
    """The Cloud Monitoring files shipped with the package, for Dataflow jobs:
    ``dashboard`` (``gcloud monitoring dashboards create --config-from-file``),
    ``alert_deadline`` and ``alert_dead_letter_rate``
    (``gcloud alpha monitoring policies create --policy-from-file``)."""
    directory = pathlib.Path(__file__).parent / "dashboards"
    return {
        "dashboard": directory / "cloud-monitoring-dataflow.json",
        "alert_deadline": directory / "cloud-monitoring-alert-deadline.json",
        "alert_dead_letter_rate": directory / "cloud-monitoring-alert-dead-letter-rate.json",
    }
