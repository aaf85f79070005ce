"""docs/security.md: every example runs as written."""

import os
import pathlib
import re
import subprocess
import sys

from tests.monitoring.services import HangingServer

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md"


def _example(name: str, language: str) -> str:
    (block,) = re.findall(rf"<!-- example: {name} -->\n```{language}\n(.*?)```", DOC.read_text(), re.S)
    return block


def _python(name: str) -> dict:
    namespace = {"__name__": f"security_doc_{name}"}
    exec(compile(_example(name, "python"), f"docs/security.md ({name})", "exec"), namespace)
    return namespace


def _shell(name: str, **env) -> subprocess.CompletedProcess:
    path = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", _example(name, "sh")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": path, **env})


def test_every_example_is_tested():
    names = re.findall(r"<!-- example: ([\w-]+) -->", DOC.read_text())
    tested = re.findall(r'_(?:python|shell)\("([\w-]+)"', pathlib.Path(__file__).read_text())
    assert sorted(names) == sorted(set(tested))


def test_redact_example():
    _python("redact")


def test_postgres_by_reference_example(postgres_server, postgres_schema, capsys, monkeypatch):
    monkeypatch.delenv("SHOP_DB_PASSWORD", raising=False)
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {postgres_schema}.orders AS SELECT g AS id FROM generate_series(1, 30) g")
    url = postgres_server.password_role("shop-Pw-1", postgres_schema)
    _python("postgres-by-reference")["count_rows"](url, f"{postgres_schema}.orders", "shop-Pw-1")
    assert capsys.readouterr().out.split() == ["30"]


def test_template_by_reference_example():
    result = _shell("template-by-reference")
    assert result.returncode == 0, result.stderr
    assert ("--parameters=output=gs://my-bucket/fraud,input=postgresql://etl@10.0.0.5:5432/shop?table=transactions"
            "&password_secret=projects/my-project/secrets/shop-db") in result.stdout


def test_safe_components_example():
    _python("safe-components")


def test_metrics_endpoint_example(tmp_path):
    result = _shell("metrics-endpoint", OUT=str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^hybridflow: serving metrics at http://127\.0\.0\.1:\d+/metrics$", result.stderr, re.M)


def test_webhook_deadline_example(tmp_path):
    from hybridflow.testing import START, collected
    from hybridflow.transforms.alerts import alert_id
    from hybridflow import Alert

    alerts = [Alert(alert_id("r", f"k{i}", START), "r", f"k{i}", 1.0, 0.0, START, None, None, "m") for i in range(6)]
    with HangingServer() as server:
        _python("webhook-deadline")["deliver"](alerts, server.url, str(tmp_path))
    assert collected(tmp_path / "delivered") == []
    assert sorted(d.error_type for d in collected(tmp_path / "undelivered")) == ["webhook_timeout"] * 6
