"""docs/security.md: every example runs as written."""

import re

from tests._docs import example, run_sh
from tests.monitoring.services import HangingServer


def _python(code: str) -> dict:
    namespace = {"__name__": "security_doc"}
    exec(compile(code, "docs/security.md", "exec"), namespace)
    return namespace


def test_redact_example():
    _python(example("security.md", "redact", "python"))


def test_postgres_by_reference_example(postgres_server, postgres_schema, capsys, monkeypatch):
    monkeypatch.delenv("SHOP_DB_PASSWORD", raising=False)
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {postgres_schema}.orders AS SELECT g AS id FROM generate_series(1, 30) g")
    url = postgres_server.password_role("shop-Pw-1", postgres_schema)
    _python(example("security.md", "postgres-by-reference", "python"))["count_rows"](url, f"{postgres_schema}.orders", "shop-Pw-1")
    assert capsys.readouterr().out.split() == ["30"]


def test_template_by_reference_example():
    result = run_sh(example("security.md", "template-by-reference", "sh"), ".", timeout=300)
    assert result.returncode == 0, result.stderr
    assert ("--parameters=output=gs://my-bucket/fraud,input=postgresql://etl@10.0.0.5:5432/shop?table=transactions"
            "&password_secret=projects/my-project/secrets/shop-db") in result.stdout


def test_safe_components_example():
    _python(example("security.md", "safe-components", "python"))


def test_metrics_endpoint_example(tmp_path):
    result = run_sh(example("security.md", "metrics-endpoint", "sh"), tmp_path, timeout=300,
                    env={"OUT": str(tmp_path / "out")})
    assert result.returncode == 0, result.stderr
    assert re.search(r"^hybridflow: serving metrics at http://127\.0\.0\.1:\d+/metrics$", result.stderr, re.M)


def test_webhook_deadline_example(tmp_path):
    from hybridflow import Alert
    from hybridflow.testing import START, collected
    from hybridflow.transforms.alerts import alert_id

    alerts = [Alert(alert_id("r", f"k{i}", START), "r", f"k{i}", 1.0, 0.0, START, None, None, "m") for i in range(6)]
    with HangingServer() as server:
        _python(example("security.md", "webhook-deadline", "python"))["deliver"](alerts, server.url, str(tmp_path))
    assert collected(tmp_path / "delivered") == []
    assert sorted(d.error_type for d in collected(tmp_path / "undelivered")) == ["webhook_timeout"] * 6
