"""The CLI end to end, in a subprocess."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.fraud import SyntheticTransactions
from hybridflow.pipelines.outputs import STAGING_PREFIX


def run(cmd, *args, timeout=300):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)


def test_list(hybridflow_cmd):
    result = run(hybridflow_cmd, "list")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == sorted(names) and {"ecommerce", "fraud", "iot"} <= set(names), result.stdout


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
        (["generate", "--count=5", "--out=x"], "the following arguments are required: pipeline"),
        (["generate", "fraud", "--out=x", "--params=colour=red"], "unknown parameter 'colour'"),
        (["run", "no_such_module:SPEC"], "cannot import 'no_such_module'"),
        (["run", "./no/such/file.py"], "no such file"),
        (["new", "Bad-Name"], "must be a lower-case Python identifier"),
        (["run", "fraud", "--runner=NoSuchRunner"], "--runner=NoSuchRunner: unknown runner; use one of"),
        (["--log_level=NOPE", "list"], "--log_level=NOPE: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (["run", "fraud", "--max_dead_letter_ratio=2"], "'2' is not a share: use a number from 0 to 1"),
        (["generate", "fraud", "--out", "/proc/nope"], "cannot write the generated records (--out) to '/proc/nope'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(hybridflow_cmd, args, message):
    result = run(hybridflow_cmd, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("hybridflow: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "profile, message",
    [
        ("options:\n  runner: [a, b]\n", "options.runner is a list, but --runner takes one value"),
        ("options:\n  runner: FnApiRunner\nrequired: notadict\n", "'required' must map flag names to an example"),
    ],
)
def test_bad_profiles_are_one_line(hybridflow_cmd, tmp_path, profile, message):
    (tmp_path / "p.yaml").write_text(profile)
    result = run(hybridflow_cmd, "run", "fraud", f"--profile={tmp_path / 'p.yaml'}")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def _one_line(result, code, *texts):
    """``result`` failed with ``code`` and one stderr line holding ``texts``; returns the log file it names."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hybridflow: "), result.stderr
    for text in texts:
        assert text in result.stderr, result.stderr
    match = re.search(r"\((?:details|traceback): ([^)]+)\)$", result.stderr.strip())
    return match and match.group(1)


@pytest.fixture
def env(tmp_path):
    """The environment of a CLI subprocess, its log files in ``tmp_path/logs``."""
    return {**os.environ, "HYBRIDFLOW_LOG_DIR": str(tmp_path / "logs")}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    directory = tmp_path_factory.mktemp("history")
    lines = generate_records(SyntheticTransactions(seed=3, cards=20, malformed=0.05), 0, 300)
    (directory / "in.jsonl").write_text("\n".join(lines) + "\n")
    return directory / "in.jsonl"


def _unprivileged():
    """A command prefix that takes away root's power to ignore file permissions (nothing for other users)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_locations_are_checked_before_the_job_each_in_one_line(hybridflow_cmd, tmp_path, env, history):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "in.jsonl").write_text(history.read_text())
    (tmp_path / "locked").chmod(0)
    (tmp_path / "read-only").mkdir(mode=0o555)
    fraud = [*hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner"]
    cases = [
        ([f"--input={tmp_path}/missing.jsonl"], 2, "no file matches the input", "pass --allow_empty"),
        ([f"--input={tmp_path}/none-*.jsonl"], 2, "no file matches the input", "pass --allow_empty"),
        ([f"--input={tmp_path}/locked/*.jsonl"], 2, f"cannot read the input directory '{tmp_path}/locked/'"),
        ([f"--input={history}", f"--output={tmp_path}/a-file"], 2, f"'{tmp_path}/a-file' is a file, not a directory"),
        ([f"--input={history}", f"--output={tmp_path}/a-file/out"], 2, "is a file, not a directory"),
        ([f"--input={history}", f"--output={tmp_path}/read-only/out"], 2, "permission denied; choose a directory"),
        ([f"--input={history}", f"--output={tmp_path}/{'x' * 5000}"], 2, "the path is too long", " characters)"),
    ]
    try:
        for flags, code, *texts in cases:
            result = subprocess.run([*_unprivileged(), *fraud, *flags], capture_output=True, text=True, env=env,
                                    timeout=300)
            log = _one_line(result, code, *texts)
            assert log is None or os.path.exists(log)
            assert not list(tmp_path.glob(f"**/{STAGING_PREFIX}*"))  # nothing started, nothing left
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_allow_empty_runs_on_no_input(hybridflow_cmd, tmp_path):
    result = run(hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner", f"--input={tmp_path}/none-*.jsonl",
                 f"--output={tmp_path}/out", "--allow_empty")
    assert result.returncode == 0, result.stderr
    assert "records read     0" in result.stdout and (tmp_path / "out" / "_SUCCESS").exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(hybridflow_cmd, tmp_path, env):
    """A 64 KiB tmpfs mounted in a user namespace (no root needed); where the
    kernel does not allow that, a 64 KiB file size limit (EFBIG) instead. The
    outputs of 3,000 transactions need more than that."""
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = [*hybridflow_cmd, "run", "fraud", "--runner=FnApiRunner",
           "--input=synthetic://transactions?count=3000&cards=50&seed=2", f"--output={disk}/out"]
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0:
        mount = f'mount -t tmpfs -o size=64k tmpfs "{disk}" && exec "$@"'
        result = subprocess.run(["unshare", "-rm", "sh", "-c", mount, "sh", *cmd], capture_output=True, text=True,
                                env=env, timeout=600)
        expected = "No space left on device; free space on that device"
    else:
        import resource
        import signal

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, preexec_fn=limit)
        expected = "File too large"
    log = _one_line(result, 1, "hybridflow: error: the job failed in step 'Write", expected)
    assert "Traceback" in open(log).read()  # the detail is in the log file the line names
    assert os.listdir(disk) == []  # the tmpfs was private to the run; without it: nothing left here


def _wait_for(predicate, proc, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.2)


@pytest.mark.prism
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_publishes_nothing_removes_its_files_and_says_one_line(
    hybridflow_cmd, tmp_path, env, prism_flags, sig
):
    out = tmp_path / "out"
    logs = tmp_path / "logs"
    proc = subprocess.Popen(
        [*hybridflow_cmd, "run", "fraud", "--profile=prism", *prism_flags,
         "--input=synthetic://transactions?count=400000&cards=5000", f"--output={out}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        # the job is running on Prism, its workers writing into the staging directory
        _wait_for(lambda: any("Job state changed to RUNNING" in p.read_text() for p in logs.glob("*.log")),
                  proc, "running job")
        _wait_for(lambda: list(out.glob(f"{STAGING_PREFIX}*/beam-temp-*")), proc, "Beam temporary files")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.count("\n") == 1 and stderr.startswith(
        "hybridflow: interrupted: the run published nothing and its temporary files were removed (details: "), stderr
    assert not out.exists()  # made by the run, removed with everything in it
    log = next(logs.glob("run-*.log")).read_text()
    assert "KeyboardInterrupt" in log


def test_run_batch_on_a_tiny_input(hybridflow_cmd, tmp_path):
    config = SyntheticTransactions(seed=3, cards=20, malformed=0.05)
    lines = list(generate_records(config, 0, 300))
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
    result = run(hybridflow_cmd, "generate", "fraud", "--count", "100", "--shards", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 100 transactions records to {tmp_path}/transactions-*.jsonl (--input)\n"
    lines = [line for p in sorted(tmp_path.glob("transactions-*.jsonl")) for line in p.read_text().splitlines()]
    assert len(lines) == 100
    assert lines == list(generate_records(SyntheticTransactions.from_params(
        {"seed": "42", "population": "42", "cards": "2000", "count": "100"}), 0, 100))


def _valid(line):
    from hybridflow.errors import RecordError
    from hybridflow.pipelines.fraud import Transaction
    from hybridflow.transforms.parse import record_parser

    try:
        record_parser(Transaction)(json.loads(line))
        return True
    except (ValueError, RecordError):
        return False
