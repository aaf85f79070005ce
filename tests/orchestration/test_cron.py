"""`hybridflow cron-line`: the printed line runs the batch pipeline as cron
would (a shell, another working directory) and its deadline check fires."""

import json
import subprocess

import pytest

from hybridflow.cli import main
from hybridflow.orchestration import ScheduledRun
from hybridflow.orchestration.cron import cron_line


def test_the_line_runs_and_the_deadline_check_fires(tmp_path, capsys):
    history = tmp_path / "history"
    assert main(["generate", "--count", "200", "--shards", "1", "--out", str(history)]) == 0
    workdir = tmp_path / "work"
    workdir.mkdir()
    capsys.readouterr()
    # a deadline no run can meet: the run must finish, report it and exit 3 (the timeout that would stop
    # it, by default twice the deadline, is set far beyond)
    assert main(["cron-line", "fraud", "--schedule", "*/15 2-4 * * mon-fri", "--workdir", str(workdir), "--timeout", "10m",
                 "--log", str(tmp_path / "fraud.log"), "--runner=FnApiRunner", f"--input={history}/*.jsonl",
                 "--output=out/fraud", "--deadline=0.01", f"--metrics_json={tmp_path}/metrics.json"]) == 0
    line = capsys.readouterr().out.strip()
    schedule, command = line[:len("*/15 2-4 * * mon-fri")], line[len("*/15 2-4 * * mon-fri") + 1:]
    assert schedule == "*/15 2-4 * * mon-fri"
    assert "timeout -s TERM 600 " in command and "flock -n /tmp/hybridflow-fraud.lock" in command
    done = subprocess.run(["sh", "-c", command.replace("\\%", "%")], cwd="/", timeout=600)
    assert done.returncode == 3  # finished past its deadline
    log = (tmp_path / "fraud.log").read_text()
    assert "hybridflow: deadline exceeded: pipeline fraud (batch)" in log
    assert "pipeline fraud (batch) on FnApiRunner: DONE" in log
    # relative --output is made absolute: the outputs are under the line's working directory
    assert list((workdir / "out").glob("fraud/alerts*.jsonl"))
    assert json.loads((tmp_path / "metrics.json").read_text())["deadline_exceeded"] is True


def test_timeout_defaults_to_twice_the_deadline_and_percent_is_escaped():
    run = ScheduledRun("fraud", "direct", ["--deadline=45m", "--output=/data/out/%Y"])
    line = cron_line(run, "0 2 * * *", command="hybridflow")
    assert line.startswith("0 2 * * * cd ")
    assert "timeout -s TERM 5400 hybridflow run fraud --profile=direct --mode=batch --deadline=45m" in line
    assert "--output=/data/out/\\%Y" in line  # cron would end the command at a bare %


@pytest.mark.parametrize("schedule", ["0 2 * *", "61 * * * *", "@sometimes", "0 2 * * * *"])
def test_bad_schedules_are_usage_errors(schedule, capsys):
    assert main(["cron-line", "fraud", "--schedule", schedule]) == 2
    assert "give five cron fields" in capsys.readouterr().err
