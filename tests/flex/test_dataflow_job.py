"""The Dataflow job of the fraud template, built offline exactly as the flex
template launcher builds it: ``main.py --NAME=VALUE ...`` plus Dataflow
options, in a subprocess that cannot reach Google.

The job is written to a local file (``--template_location``) instead of
being submitted; staging (the pipeline proto) goes to gs:// paths served by a
local GCS emulator; ``--no_auth`` and an environment whose only reachable
hosts are on loopback make any call to Google fail at once. A template that
would fail at launch fails here first.

``hybridflow run --profile dataflow`` stages hybridflow's wheel for the
workers: Beam's own stager, fed the options as the CLI resolves them, shows it.
"""

import json
import subprocess
import sys

import pytest
from apache_beam.portability.api import beam_runner_api_pb2

from hybridflow import get_pipeline
from hybridflow.flex.package import WHEEL_NAME, stage_hybridflow
from hybridflow.runners_config import load_profile
from tests.conftest import REPO
from tests.flex.conftest import BUCKET, PROJECT, offline_env

TOP_LEVEL = {
    "ReadTransactions", "ParseTransactions", "BuildProfiles", "Score", "AllDeadLetters",
    "WriteAlerts", "WriteAggregates", "WriteProfiles", "WriteDeadLetters", "WriteLate",
}


def launch_main(params, flags, env, timeout=240):
    """Runs templates/fraud/main.py the way the flex template launcher does."""
    argv = [f"--{name}={value}" for name, value in params.items()] + flags
    return subprocess.run(
        [sys.executable, str(REPO / "templates" / "fraud" / "main.py"), *argv],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


def dataflow_flags(mode, **extra):
    flags = {
        "runner": "DataflowRunner",
        "project": PROJECT,
        "region": "us-central1",
        "job_name": f"hybridflow-fraud-{mode}",
        "temp_location": f"gs://{BUCKET}/tmp",
        "staging_location": f"gs://{BUCKET}/staging",
        **extra,
    }
    return [f"--{k}={v}" for k, v in flags.items()]


IMAGE = "us-central1-docker.pkg.dev/test-project/hybridflow/fraud:0.1.0-0123456789ab"


@pytest.mark.services
@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_main_py_builds_the_complete_dataflow_job(mode, gcs_emulator, offline_credentials, tmp_path):
    job_file = tmp_path / "job.json"
    params = {"mode": mode, "output": f"gs://{BUCKET}/fraud-{mode}", "velocity_threshold": "7",
              "sdk_container_image": IMAGE, "max_num_workers": "5"}
    if mode == "streaming":
        params["duration"] = "10m"
    flags = dataflow_flags(mode, template_location=job_file) + ["--no_auth"]
    env = offline_env(STORAGE_EMULATOR_HOST=gcs_emulator.endpoint, GOOGLE_APPLICATION_CREDENTIALS=offline_credentials)
    result = launch_main(params, flags, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote Dataflow job hybridflow-fraud-{mode} to {job_file}" in result.stdout

    job = json.loads(job_file.read_text())
    assert job["name"] == f"hybridflow-fraud-{mode}"
    assert job["type"] == ("JOB_TYPE_STREAMING" if mode == "streaming" else "JOB_TYPE_BATCH")
    environment = job["environment"]
    options = environment["sdkPipelineOptions"]["options"]
    # the template parameters reached the pipeline's options, typed by its parser
    assert options["mode"] == mode
    assert options["streaming"] is (mode == "streaming")
    assert options["output"] == f"gs://{BUCKET}/fraud-{mode}"
    assert options["velocity_threshold"] == 7
    assert options["window"] == "sliding:5m/1m"  # a pipeline default
    assert (options.get("duration") == 600.0) is (mode == "streaming")
    assert options["project"] == PROJECT and options["region"] == "us-central1"
    assert options["sdk_location"] == "container"  # from the dataflow profile under the launcher's flags
    assert ("enable_streaming_engine" in environment["experiments"]) is (mode == "streaming")
    assert environment["version"]["job_type"] == ("FNAPI_STREAMING" if mode == "streaming" else "FNAPI_BATCH")
    pool = environment["workerPools"][0]
    # the workers run the template image, which has hybridflow and its requirements: nothing staged
    assert pool["workerHarnessContainerImage"] == IMAGE
    assert options["max_num_workers"] == 5  # a Dataflow option passed as a template parameter
    assert not [p["name"] for p in pool.get("packages", []) if p["name"].startswith("hybridflow")]

    # the steps: Runner v2 stages the pipeline proto, here in the emulator
    assert options["pipelineUrl"].startswith(f"gs://{BUCKET}/staging/hybridflow-fraud-{mode}.")
    pipeline = beam_runner_api_pb2.Pipeline.FromString(gcs_emulator.read(options["pipelineUrl"]))
    transforms = pipeline.components.transforms
    names = {t.unique_name for t in transforms.values()}
    assert TOP_LEVEL <= names, TOP_LEVEL - names
    assert ("ReadHistory" in names) is (mode == "streaming")  # streaming profiles come from a bounded history
    assert any(name.startswith("Score/CardWindows/") for name in names)
    assert any(name.startswith("Score/VelocityRule/") for name in names)
    read = next(t for t in transforms.values() if t.unique_name == "ReadTransactions")
    boundedness = {pipeline.components.pcollections[pc].is_bounded for pc in read.outputs.values()}
    expected = beam_runner_api_pb2.IsBounded.UNBOUNDED if mode == "streaming" else beam_runner_api_pb2.IsBounded.BOUNDED
    assert boundedness == {expected}


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_dry_run_builds_the_job_without_any_storage(mode):
    """--dry_run=True: the graph is built and checked by the Dataflow runner;
    nothing is staged, so no emulator is needed (and none is reachable)."""
    params = {"mode": mode, "output": f"gs://{BUCKET}/out"}
    result = launch_main(params, dataflow_flags(mode, dry_run=True), offline_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"pipeline fraud ({mode}): dry run: built Dataflow job hybridflow-fraud-{mode}" in result.stdout


@pytest.mark.parametrize(
    "params, flags, message",
    [
        ({"mode": "batch"}, [], "profile dataflow needs"),
        ({"mode": "batch", "output": "gs://b/o", "velocity_threshold": "0"}, dataflow_flags("batch"),
         "--velocity_threshold=0: must be >= 1"),
        ({"output": "gs://b/o", "velocity_thresold": "3"}, dataflow_flags("batch"), "did you mean --velocity_threshold"),
    ],
)
def test_main_py_rejects_bad_launches_in_one_line(params, flags, message):
    result = launch_main(params, flags, offline_env(), timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("hybridflow: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def _dataflow_options(*flags):
    """Options exactly as `hybridflow run fraud --profile dataflow FLAGS` resolves them."""
    spec = get_pipeline("fraud")
    profile = load_profile("dataflow")
    options = spec.options([f"--project={PROJECT}", "--region=us-central1", f"--temp_location=gs://{BUCKET}/tmp",
                            f"--output=gs://{BUCKET}/out", *flags], profile.flags())
    profile.check_required(options)
    return options


def _staged(options, tmp_path):
    from apache_beam.runners.portability.stager import Stager

    (tmp_path / "staging").mkdir()
    resources = Stager.create_job_resources(options, str(tmp_path / "staging"))
    return sorted(_name(r) for r in resources)


def _name(artifact):
    from apache_beam.portability.api import beam_runner_api_pb2

    payload = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload)
    return payload.staged_name


def test_run_profile_dataflow_stages_hybridflow_with_beams_stager(tmp_path):
    options = _dataflow_options()
    wheel = stage_hybridflow(options)
    assert wheel is not None and wheel.name == WHEEL_NAME
    staged = _staged(options, tmp_path)
    assert WHEEL_NAME in staged, staged  # Beam's stager uploads it; workers install it at start-up
    assert "extra_packages.txt" in staged


def test_nothing_is_staged_when_the_workers_run_the_template_image(tmp_path):
    options = _dataflow_options(f"--sdk_container_image={IMAGE}")
    assert stage_hybridflow(options) is None
    assert not [name for name in _staged(options, tmp_path) if name.startswith("hybridflow")]
