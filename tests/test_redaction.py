"""Nothing leaked: a URI's password or token never reaches a usage error, a
dry-run's commands, a launch record, the run summary, metrics.json, a dead
letter or a log line. Each path is run for real and its output grepped for
the secret."""

import glob
import json
import subprocess
import sys

import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import InvalidOptionError
from hybridflow.launchers import LaunchRequest
from hybridflow.launchers.dataflow import FlexTemplateLauncher
from hybridflow.launchers.local import SubprocessLauncher
from hybridflow.redaction import has_password, redact, secret_parts
from tests.monitoring.services import WebhookReceiver

PASSWORD = "Pw-S3cr3t-4f9"
PG = f"postgresql://etl:{PASSWORD}@127.0.0.1:1/shop"
TOKEN = "XXXXTOKEN5b2e"
SLACK = f"https://hooks.slack.com/services/T000/B000/{TOKEN}"


@pytest.mark.parametrize(
    "text, shown",
    [
        (f"{PG}?table=orders", "postgresql://etl:***@127.0.0.1:1/shop?table=orders"),
        ("postgresql://etl@db/shop?table=t&password_env=PGPASSWORD", "postgresql://etl@db/shop?table=t&password_env=PGPASSWORD"),
        (f"postgresql://etl@db/shop?password={PASSWORD}&table=t", "postgresql://etl@db/shop?password=***&table=t"),
        (f"postgresql://etl:{PASSWORD}/x@db/shop", "postgresql://etl:***@db/shop"),  # an unescaped / in it
        (SLACK, "https://hooks.slack.com/***"),
        (f"webhook+https://u:{PASSWORD}@hooks.example.com/hook?token={TOKEN}", "webhook+https://u:***@hooks.example.com/***"),
        (f"--parameters=input={PG}?table=t,mode=batch", "--parameters=input=postgresql://etl:***@127.0.0.1:1/shop?table=t,mode=batch"),
        (f"POST {SLACK}: HTTP 500", "POST https://hooks.slack.com/***: HTTP 500"),
        ("gs://bucket/history/*.jsonl", "gs://bucket/history/*.jsonl"),
        ("data/history/part-?.jsonl", "data/history/part-?.jsonl"),
        ("kafka://127.0.0.1:9092/transactions?key_field=card_id", "kafka://127.0.0.1:9092/transactions?key_field=card_id"),
        ("https://hooks.example.com", "https://hooks.example.com"),
    ],
)
def test_redact(text, shown):
    assert redact(text) == shown


def test_known_secret_parts_are_removed_wherever_they_appear():
    message = f"HTTPConnectionPool(host='hooks.slack.com'): Max retries exceeded with url: /services/T000/B000/{TOKEN}"
    assert TOKEN not in redact(message, SLACK)
    assert redact(message, SLACK).endswith("with url: /***")
    assert secret_parts("webhook+http://127.0.0.1:9/hook?webhook_retries=0") == ["/hook?webhook_retries=0", "/hook"]
    assert has_password(f"--input={PG}?table=t") and not has_password("--input=postgresql://etl@db/shop?table=t")


def run(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "hybridflow", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize(
    "flag, message",
    [
        (f"--input={PG}?table=t&partitions=abc", "partitions='abc' must be an integer"),
        (f"--input={PG}?table=t&validate=maybe", "validate='maybe' must be true or false"),
        (f"--input={PG}", "add ?table=NAME"),
        (f"--input={PG}?table=t;drop", "is not a plain identifier"),
        (f"--history={PG}?table=t&nosuch=1", "unknown parameter 'nosuch'"),
        (f"--input={PG}?table=t&password_env=X", "a password in the URL and password_env=X"),
        (f"--alerts_webhook=ftp://u:{PASSWORD}@example.com/hook", "give an http:// or https:// URL"),
    ],
)
def test_usage_errors_never_show_the_password(flag, message):
    result = run("run", "fraud", "--mode=batch", "--runner=FnApiRunner", flag)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert PASSWORD not in result.stderr + result.stdout and TOKEN not in result.stderr + result.stdout
    assert "***" in result.stderr


def test_template_parameters_refuse_a_password_and_take_a_reference(tmp_path):
    common = ["template", "launch", "fraud", "--project", "my-project", "--region", "us-central1",
              "--skip-build", "--dry-run", "--param", "output=gs://b/out"]
    inline = run(*common, "--param", f"input={PG}?table=orders")
    assert inline.returncode == 2 and PASSWORD not in inline.stderr + inline.stdout
    assert "holds a password or token" in inline.stderr and "password_env=NAME" in inline.stderr
    by_reference = run(*common, "--param", "input=postgresql://etl@127.0.0.1:1/shop?table=orders&password_env=PGPASSWORD")
    assert by_reference.returncode == 0, by_reference.stderr
    assert "--parameters=output=gs://b/out,input=postgresql://etl@127.0.0.1:1/shop?table=orders&password_env=PGPASSWORD" \
        in by_reference.stdout


REQUEST = LaunchRequest("velocity", "card-7", "a" * 20, "", Timestamp.of(60), Timestamp.of(0), Timestamp.of(60))


def test_launchers_refuse_passwords_and_record_redacted_commands():
    with pytest.raises(InvalidOptionError, match=r"holds a password or token") as err:
        SubprocessLauncher("fraud", ["--mode=batch", f"--input={PG}?table=t"], dry_run=True)
    assert PASSWORD not in str(err.value)
    with pytest.raises(InvalidOptionError, match=r"holds a password or token") as err:
        FlexTemplateLauncher("fraud", "my-project", "us-central1",
                             {"input": f"{PG}?table=t", "output": "gs://b/{launch_id}"}, dry_run=True)
    assert PASSWORD not in str(err.value)
    # a webhook token in the arguments is allowed, but recorded redacted
    launcher = SubprocessLauncher("fraud", ["--mode=batch", f"--alerts_webhook={SLACK}"], dry_run=True)
    record = launcher.launch(REQUEST)
    assert TOKEN not in record.command and "--alerts_webhook=https://hooks.slack.com/***" in record.command


def test_summary_metrics_json_dead_letters_and_logs_never_show_a_webhook_token(tmp_path):
    """A run whose alerts go to a webhook that rejects them (one --sink, and
    --alerts_webhook whose failures join the dead letters), at DEBUG log
    level: the token is in no output."""
    out = tmp_path / "out"
    with WebhookReceiver([(400, {})]) as receiver:
        base = receiver.url.rsplit("/", 1)[0]
        hook = f"{base}/services/T000/B000/{TOKEN}?token={TOKEN}z"
        result = run(
            "--log_level=DEBUG", "run", "fraud", "--mode=batch", "--runner=FnApiRunner",
            "--input=synthetic://transactions?count=400&seed=3&population=42&cards=20&fraud=0.05",
            f"--output={out}", f"--metrics_json={out}/metrics.json",
            f"--alerts_webhook={hook}", f"--sink=alerts=webhook+{hook}&webhook_retries=0",
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert receiver.requests, "the webhook was called"
    host = base.split("/")[2]  # 127.0.0.1:PORT
    assert f"webhook+http://{host}/***" in result.stdout  # the summary's outputs
    dead = [json.loads(line) for path in glob.glob(f"{out}/dead_letters*.jsonl") for line in open(path)]
    rejected = [d for d in dead if d["error_type"] == "webhook_rejected"]
    assert rejected and all(d["message"].startswith(f"POST http://{host}/***: HTTP 400") for d in rejected)
    texts = {"stdout": result.stdout, "stderr": result.stderr, "metrics.json": (out / "metrics.json").read_text(),
             "dead letters": json.dumps(dead)}
    assert "urllib3.connectionpool" in result.stderr  # the DEBUG request lines were logged ...
    for name, text in texts.items():
        assert TOKEN not in text, name  # ... without the token


def test_text_printed_to_stderr_reaches_the_log_file_redacted(tmp_path, monkeypatch):
    """While a command runs, stderr goes to its log file (a worker's
    traceback, a library's print): every line is redacted, also one written
    in pieces."""
    from hybridflow.logs import CommandLog

    monkeypatch.setenv("HYBRIDFLOW_LOG_DIR", str(tmp_path))
    log = CommandLog("run").start()
    try:
        print(f"connecting to {PG}?table=orders", file=sys.stderr)
        sys.stderr.write("retrying postgresql://etl:")
        sys.stderr.write(f"{PASSWORD}@127.0.0.1:1/shop")  # the line ends at stop()
    finally:
        log.stop()
    text = open(log.path).read()
    assert PASSWORD not in text
    assert "connecting to postgresql://etl:***@127.0.0.1:1/shop?table=orders\n" in text
    assert text.endswith("retrying postgresql://etl:***@127.0.0.1:1/shop")


def test_the_traceback_shown_with_hybridflow_traceback_is_redacted(monkeypatch, capfd):
    from hybridflow import cli

    monkeypatch.setenv("HYBRIDFLOW_TRACEBACK", "1")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    assert cli.main(["profiles"]) == 0
    assert sys.excepthook is cli._redacted_excepthook
    try:
        raise RuntimeError(f"cannot reach {PG}?table=orders")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err and PASSWORD not in err
    assert "RuntimeError: cannot reach postgresql://etl:***@127.0.0.1:1/shop?table=orders" in err
