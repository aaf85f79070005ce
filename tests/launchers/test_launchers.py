"""The launcher backends: commands, results, and mistakes caught when the
launcher is made. Nothing here reaches Google: the Dataflow backend runs a
recording stand-in for gcloud or only builds its command."""

import stat
import sys

import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import InvalidOptionError, SchemaError, UnknownPipelineError, UnknownProfileError
from hybridflow.flex.package import image_tag
from hybridflow.launchers import LaunchRequest, LaunchStatus
from hybridflow.launchers.dataflow import FlexTemplateLauncher
from hybridflow.launchers.local import SubprocessLauncher

REQUEST = LaunchRequest(
    rule="velocity", key="card-7", alert_id="a" * 20, reason="velocity card_id=card-7: n=12 >= 10",
    event_time=Timestamp.of(1767225960), window_start=Timestamp.of(1767225660), window_end=Timestamp.of(1767225960),
)


def test_launch_ids_are_per_rule_and_window():
    same_window = LaunchRequest("velocity", "other-card", "b" * 20, "", REQUEST.event_time,
                                REQUEST.window_start, REQUEST.window_end)
    assert same_window.launch_id == REQUEST.launch_id
    other_rule = LaunchRequest("spend", "card-7", "a" * 20, "", REQUEST.event_time, REQUEST.window_start,
                               REQUEST.window_end)
    assert other_rule.launch_id != REQUEST.launch_id
    assert len(REQUEST.launch_id) == 16
    assert REQUEST.placeholders()["window_end"] == "2026-01-01T00:06:00Z"


def test_subprocess_command_fills_placeholders():
    launcher = SubprocessLauncher("fraud", ["--mode=batch", "--output", "out/{rule}/{launch_id}",
                                            "--profile=direct"], dry_run=True)
    command = launcher.command(REQUEST)
    assert command == [sys.executable, "-m", "hybridflow", "run", "fraud", "--mode=batch", "--output",
                       f"out/velocity/{REQUEST.launch_id}", "--profile=direct"]
    result = launcher.launch(REQUEST)
    assert result.status is LaunchStatus.DRY_RUN and result.exit_code is None
    assert result.job == f"out/velocity/{REQUEST.launch_id}"


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: SubprocessLauncher("nosuch"), UnknownPipelineError, "unknown pipeline 'nosuch'"),
        (lambda: SubprocessLauncher("fraud", ["--velocity_thresold=3"]), InvalidOptionError,
         "did you mean --velocity_threshold"),
        (lambda: SubprocessLauncher("fraud", ["--mode=sideways"]), InvalidOptionError, "invalid choice"),
        (lambda: SubprocessLauncher("fraud", ["--output=out/{card}"]), SchemaError, "bad placeholder 'card'"),
        (lambda: SubprocessLauncher("fraud", ["--profile=nosuch"]), UnknownProfileError, "unknown profile"),
    ],
)
def test_subprocess_launcher_mistakes_fail_when_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_failing_run_is_recorded_not_raised():
    failing = SubprocessLauncher(
        "fraud", ["--mode=batch"],
        command=[sys.executable, "-c", "import sys; print('boom: no such input', file=sys.stderr); sys.exit(3)"],
    )
    result = failing.launch(REQUEST)
    assert (result.status, result.exit_code, result.detail) == (LaunchStatus.FAILED, 3, "boom: no such input")
    slow = SubprocessLauncher("fraud", [], timeout=0.5, command=[sys.executable, "-c", "import time; time.sleep(30)"])
    result = slow.launch(REQUEST)
    assert (result.status, result.detail) == (LaunchStatus.FAILED, "timed out after 0.5s")
    missing = SubprocessLauncher("fraud", [], command=["/nonexistent/hybridflow"])
    assert missing.launch(REQUEST).detail.startswith("could not start /nonexistent/hybridflow")


PARAMS = {"mode": "batch", "input": "gs://my-bucket/history/*.jsonl",
          "output": "gs://my-bucket/investigations/{rule}/{launch_id}"}


def test_flex_template_command_and_dry_run():
    launcher = FlexTemplateLauncher("fraud", "my-project", "us-central1", PARAMS, dry_run=True)
    command = launcher.command(REQUEST)
    job_name = f"hf-fraud-velocity-{REQUEST.launch_id}"
    assert command[:5] == ["gcloud", "dataflow", "flex-template", "run", job_name]
    assert "--template-file-gcs-location=gs://my-project-hybridflow/templates/fraud.json" in command
    image = f"us-central1-docker.pkg.dev/my-project/hybridflow/fraud:{image_tag()}"  # workers run the template image
    assert (f"--parameters=mode=batch,input=gs://my-bucket/history/*.jsonl,"
            f"output=gs://my-bucket/investigations/velocity/{REQUEST.launch_id},sdk_container_image={image}") in command
    assert command[-1] == "--format=value(job.id)"
    result = launcher.launch(REQUEST)
    assert (result.status, result.job) == (LaunchStatus.DRY_RUN, job_name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(parameters={"mode": "batch"}), "needs --param output=..."),
        (dict(parameters={**PARAMS, "velocity_threshold": "many"}), "velocity_threshold='many' does not match"),
        (dict(parameters={**PARAMS, "output": "local/{launch_id}"}), "does not match"),
        (dict(parameters=PARAMS, project="P"), "not a Google Cloud project id"),
    ],
)
def test_flex_template_launcher_mistakes_fail_when_made(kwargs, message):
    args = {"pipeline": "fraud", "project": "my-project", "region": "us-central1", **kwargs}
    with pytest.raises(InvalidOptionError, match=message):
        FlexTemplateLauncher(**args)


def test_flex_template_launch_records_the_job_id(tmp_path):
    """With a stand-in gcloud that answers like `flex-template run --format=value(job.id)`."""
    fake = tmp_path / "gcloud"
    fake.write_text(f'#!/bin/sh\necho "$*" > "{tmp_path}/args"\necho 2026-01-01_00_06_00-1234567890\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    launcher = FlexTemplateLauncher("fraud", "my-project", "us-central1", PARAMS, gcloud=str(fake))
    result = launcher.launch(REQUEST)
    assert (result.status, result.exit_code, result.job) == (LaunchStatus.SUBMITTED, 0, "2026-01-01_00_06_00-1234567890")
    assert (tmp_path / "args").read_text().startswith(f"dataflow flex-template run hf-fraud-velocity-{REQUEST.launch_id} ")
