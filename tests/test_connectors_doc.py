"""docs/connectors.md: every code example runs as written, and the Datadog check configuration
names metric families a real run's /metrics serves."""

import pathlib
import re
import urllib.request

import pytest

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "connectors.md"


def example(name: str, language: str = "python") -> str:
    (block,) = re.findall(rf"<!-- example: {name} -->\n```{language}\n(.*?)```", DOC.read_text(), re.S)
    return block


def _run(name, tmp_path):
    namespace = {"__name__": f"connectors_doc_{name}"}
    exec(compile(example(name), f"docs/connectors.md ({name})", "exec"), namespace)
    return namespace["run"](str(tmp_path))


def test_orc_and_hive_partitions_example(tmp_path, capsys):
    pytest.importorskip("duckdb", reason="the bench extra")
    assert _run("orc-and-hive-partitions", tmp_path) == [("2026-01-01", "00", 2), ("2026-01-01", "01", 1)]
    printed = capsys.readouterr().out
    assert printed.count("Transaction(") == 3 and "card_id='c2'" in printed


def test_iceberg_example(tmp_path, capsys):
    pytest.importorskip("pyiceberg", reason="pip install 'hybridflow[iceberg]'")
    assert isinstance(_run("iceberg", tmp_path), int)
    printed = capsys.readouterr().out
    assert printed.count("Transaction(") == 1 and "card_id='c1'" in printed  # the first snapshot only


def test_datadog_openmetrics_config_matches_our_metrics():
    import apache_beam as beam
    import yaml
    from prometheus_client.parser import text_string_to_metric_families

    from hybridflow import ParseRecords, Rule, ThresholdAlerts, Transaction, WindowedAggregate
    from hybridflow.monitoring import JobStatus, MetricsExporter
    from hybridflow.schemas import to_json
    from hybridflow.testing import transactions

    config = yaml.safe_load(example("datadog", "yaml"))
    (instance,) = config["instances"]
    assert instance["openmetrics_endpoint"].endswith("/metrics") and instance["namespace"] == "hybridflow"
    configured = {name for entry in instance["metrics"] for name in entry}

    lines = [to_json(t) for t in transactions([("c1", 10.0, i) for i in range(5)])] + ['{"broken']
    p = beam.Pipeline(runner="FnApiRunner")
    parsed = p | beam.Create(lines) | ParseRecords(Transaction)
    windows = parsed.records | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"n": "count"})
    _ = windows.aggregates | ThresholdAlerts([Rule("busy", "n", ">=", 3)], key="card_id")
    result = p.run()
    result.wait_until_finish()
    exporter = MetricsExporter(JobStatus("doc", "batch", "FnApiRunner", "DONE"), port=0, address="127.0.0.1")
    with exporter:
        exporter.attach(result)
        with urllib.request.urlopen(exporter.url, timeout=10) as response:
            served = {f.name for f in text_string_to_metric_families(response.read().decode())}
        exporter.detach()
    assert configured <= served, f"not served: {sorted(configured - served)}"
