"""The CLI end to end, in a subprocess."""

import json
import subprocess

import pytest

from hybridflow.io.synthetic import SyntheticTransactions, generate_transactions


def run(cmd, *args, timeout=300):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)


def test_list(hybridflow_cmd):
    result = run(hybridflow_cmd, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fraud ")


def test_describe(hybridflow_cmd):
    result = run(hybridflow_cmd, "describe", "fraud")
    assert result.returncode == 0, result.stderr
    for text in ("modes: batch, streaming", "--velocity_threshold", "int", "default 10", "--window", "profiles:"):
        assert text in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nosuch"], "unknown pipeline 'nosuch'"),
        (["describe", "nosuch"], "unknown pipeline 'nosuch'"),
        (["run", "fraud", "--bogus=1"], "unknown flag --bogus"),
        (["run", "fraud", "--velocity_thresold=3"], "did you mean --velocity_threshold"),
        (["run", "fraud", "--velocity_threshold=abc"], "invalid int value"),
        (["run", "fraud", "--mode=sideways"], "invalid choice"),
        (["run", "fraud", "--profile=nosuch"], "unknown profile 'nosuch'"),
        (["run", "fraud", "--window=weekly"], "--window=weekly"),
        (["run", "fraud", "--input=ftp://x/y"], "no source for scheme 'ftp'"),
        (["run", "fraud", "--input=data/x.txt"], "cannot tell the file format"),
        (["run", "fraud", "--profile=dataflow"], "profile dataflow needs --project, --region, --temp_location"),
        (["run", "fraud", "--mode=streaming", "--profile=flink", "--early_every=10s"], "use --early_count=N"),
        (["run", "fraud", "--mode=streaming", "--profile=spark"], "use --profile=flink or --profile=prism"),
        (["run", "fraud", "--profile=dataproc"], "profile dataproc needs --flink_master, --environment_config"),
        (["k8s", "fraud", "--parallelism=0"], "--parallelism=0: must be >= 1"),
        (["cron-line", "fraud", "--schedule=daily"], "--schedule='daily': give five cron fields"),
        (["airflow-dag", "fraud", "--mode=streaming"], "an Airflow DAG schedules batch runs"),
        (["run", "fraud", "--print_alerts=maybe"], "'maybe' is not a boolean"),
        (["run", "fraud", "--zscore_threshold=-inf"], "--zscore_threshold=-inf: must be a finite number > 0"),
        (["run", "fraud", "--zscore_threshold=nan"], "--zscore_threshold=nan: must be a finite number > 0"),
        (["run", "fraud", "--timestamp_unit=ns"], "invalid choice: 'ns'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(hybridflow_cmd, args, message):
    result = run(hybridflow_cmd, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("hybridflow: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_run_batch_on_a_tiny_input(hybridflow_cmd, tmp_path):
    config = SyntheticTransactions(seed=3, cards=20, malformed=0.05)
    lines = list(generate_transactions(config, 0, 300))
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    bad = sum(1 for line in lines if not _valid(line))
    result = run(
        hybridflow_cmd,
        "run", "fraud", "--mode", "batch", "--runner=FnApiRunner",
        f"--input={tmp_path}/in.jsonl", f"--output={tmp_path}/out", "--output_format=parquet",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pipeline fraud (batch) on FnApiRunner: DONE" in out
    assert "records read     300" in out
    assert f"dead letters     {bad} " in out or f"dead letters     {bad}\n" in out
    assert list((tmp_path / "out").glob("alerts-*.parquet"))
    assert list((tmp_path / "out").glob("profiles-*.parquet"))


def test_print_alerts_prints_every_alert_once(hybridflow_cmd, tmp_path):
    result = run(hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner", "--print_alerts",
                 "--input=synthetic://transactions?count=2000&cards=100&fraud=0.02", f"--output={tmp_path}/o")
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("ALERT ")]
    written = [json.loads(line) for path in (tmp_path / "o").glob("alerts-*.jsonl") for line in path.open()]
    assert len(printed) == len(written) > 0
    assert sorted(line.split("  ", 1)[1] for line in printed) == sorted(a["message"] for a in written)
    # off by default in batch
    quiet = run(hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner",
                "--input=synthetic://transactions?count=200&cards=10", f"--output={tmp_path}/q")
    assert quiet.returncode == 0 and "ALERT " not in quiet.stdout


def test_profile_flags_are_overridden_by_the_command_line(hybridflow_cmd, tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("description: test\noptions:\n  runner: NoSuchRunner\n  velocity_threshold: 3\n")
    result = run(hybridflow_cmd, "run", "fraud", f"--profile={profile}", "--runner=FnApiRunner",
                 "--input=synthetic://transactions?count=50&cards=5", f"--output={tmp_path}/o")
    assert result.returncode == 0, result.stderr
    assert "on FnApiRunner" in result.stdout  # the command line's runner won over the profile's
    # ... and the profile's own value was applied: every velocity alert used its threshold of 3
    alerts = [json.loads(line) for path in tmp_path.glob("o/alerts*.jsonl") for line in path.read_text().splitlines()]
    velocity = [a for a in alerts if a["rule"] == "velocity"]
    assert velocity and {a["threshold"] for a in velocity} == {3}


def test_generate(hybridflow_cmd, tmp_path):
    result = run(hybridflow_cmd, "generate", "--count", "100", "--shards", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line for p in sorted(tmp_path.glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert len(lines) == 100
    assert lines == list(generate_transactions(SyntheticTransactions.from_params(
        {"seed": "42", "population": "42", "cards": "2000", "count": "100"}), 0, 100))


def _valid(line):
    from hybridflow.errors import RecordError
    from hybridflow.schemas import Transaction
    from hybridflow.transforms.parse import record_parser

    try:
        record_parser(Transaction)(json.loads(line))
        return True
    except (ValueError, RecordError):
        return False
