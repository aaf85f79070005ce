"""Airflow for real (its own venv, `make tools`): the DAG `hybridflow
airflow-dag` writes runs under `airflow dags test` against the local runner,
its sensor waits for the success marker, the flex-template DAG loads, and
`AirflowLauncher` triggers DAG runs through the API server of a local
Airflow (`airflow api-server`, a local process) from a pipeline's alerts."""

import json
import os

import apache_beam as beam
import pytest
import requests
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow import AirflowLauncher, Alert, LaunchOnAlert
from hybridflow.cli import main
from hybridflow.orchestration import ScheduledRun
from hybridflow.orchestration.airflow import AirflowDag
from hybridflow.testing import Collect, collected
from hybridflow.testing.services._process import ServiceUnavailable
from hybridflow.testing.services.airflow import AirflowApiServer, AirflowHome, airflow_venv
from hybridflow.testing.services.pytest_plugin import unavailable

pytestmark = [pytest.mark.services, pytest.mark.slow]

DAG_ID = "hybridflow_fraud_test"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    try:
        airflow_venv()
    except ServiceUnavailable as exc:  # not provisioned: says `make tools`
        unavailable(str(exc))
    return AirflowHome.create(tmp_path_factory.mktemp("airflow"))


@pytest.fixture(scope="module")
def batch_dag(airflow_home, tmp_path_factory):
    """The fraud DAG on the direct profile over a small synthetic history, in the home's DAG folder."""
    data = tmp_path_factory.mktemp("fraud-data")
    assert main(["generate", "--count", "300", "--shards", "1", "--out", str(data / "history")]) == 0
    run = ScheduledRun("fraud", "direct", [f"--input={data}/history/*.jsonl", f"--output={data}/out",
                                            "--deadline=30m"])
    dag = AirflowDag(run, dag_id=DAG_ID, poke_interval=2, sensor_timeout=20)
    airflow_home.add_dag(dag.render(), f"{DAG_ID}.py")
    return dag


def test_the_dag_runs_under_airflow_dags_test(airflow_home, batch_dag):
    airflow_home.cli("dags", "test", DAG_ID, check=False)
    (run,) = airflow_home.runs(DAG_ID)
    states = airflow_home.task_states(DAG_ID, run["run_id"])
    assert states["run_fraud"] == "success", states
    output = batch_dag.run.output
    assert [p for p in os.listdir(output) if p.startswith("alerts")]  # the pipeline ran and wrote its outputs
    # the sensor passes exactly when the run published its success marker
    marker = batch_dag.run.success_marker()
    assert states["wait_for_success_marker"] == ("success" if os.path.exists(marker) else "failed"), states
    if not os.path.exists(marker):  # the marker comes with atomic outputs; prove the sensor sees it
        open(marker, "w").close()
    done = airflow_home.cli("tasks", "test", DAG_ID, "wait_for_success_marker", check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_flex_template_dag_loads(airflow_home):
    flags = ["--project=my-project", "--region=us-central1", "--temp_location=gs://b/tmp",
             "--input=gs://b/history/*.jsonl", "--output=gs://b/fraud"]
    dag = AirflowDag(ScheduledRun("fraud", "dataflow", flags), dag_id="hybridflow_fraud_flex", flex_template=True)
    airflow_home.add_dag(dag.render(), "hybridflow_fraud_flex.py")
    airflow_home.cli("dags", "reserialize")  # parse the DAG folder into the database
    done = airflow_home.cli("dags", "list-import-errors", "--output", "json", check=False)
    assert "hybridflow_fraud_flex" not in done.stdout and "Traceback" not in done.stdout, done.stdout
    dags = airflow_home.cli("dags", "list", "--output", "json")
    assert "hybridflow_fraud_flex" in dags.stdout, dags.stdout


@pytest.fixture(scope="module")
def api_server(airflow_home, batch_dag):
    airflow_home.cli("dags", "reserialize")
    server = AirflowApiServer(airflow_home)
    try:
        server.start()
    except ServiceUnavailable as exc:
        unavailable(f"the Airflow API server cannot start: {exc}")
    yield server
    server.stop()


def _alerts(n):
    start, end = Timestamp.of(1767225600), Timestamp.of(1767225660)
    return [Alert(f"a{i}", "velocity", f"card-{i}", 12.0, 10.0, end, start, end, f"velocity card-{i}: n=12 >= 10")
            for i in range(n)]


def _launch(alerts, launcher, directory, failed=None):
    """The launch records; a failed launch (after its retries) is a dead
    letter, collected under ``failed`` when given, else asserted absent."""
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        result = p | beam.Create(alerts) | LaunchOnAlert(launcher, rules=["velocity"], retry_backoff=0)
        result.launches | Collect(directory)
        result.dead_letters | "Failed" >> Collect(failed or f"{directory}-failed")
    if failed is None:
        assert collected(f"{directory}-failed") == []
    return collected(directory)


def test_alerts_trigger_a_dag_run_through_the_api(api_server, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_USERNAME", api_server.username)
    monkeypatch.setenv("AIRFLOW_PASSWORD", api_server.password)
    launcher = AirflowLauncher(DAG_ID, api_server.url, conf={"rule": "{rule}", "card": "{key}",
                                                            "window_end": "{window_end}"})
    (first,) = _launch(_alerts(2), launcher, tmp_path / "first")  # two alerts, one window: one launch
    assert (first.status, first.backend, first.pipeline) == ("submitted", "airflow", DAG_ID)
    run_id = f"hybridflow-{first.launch_id}"
    assert first.job == f"{DAG_ID}/{run_id}"
    token = requests.post(f"{api_server.url}/auth/token", timeout=30,
                          json={"username": api_server.username, "password": api_server.password}).json()["access_token"]
    dag_run = requests.get(f"{api_server.url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
    assert dag_run.status_code == 200, dag_run.text
    assert dag_run.json()["conf"] == {"rule": "velocity", "card": "card-0", "window_end": "2026-01-01T00:01:00Z"}
    # a replay of the same alerts launches the same id: Airflow keeps one run
    (again,) = _launch(_alerts(2), launcher, tmp_path / "again")
    assert again.status == "submitted" and "already exists" in again.detail
    runs = requests.get(f"{api_server.url}/api/v2/dags/{DAG_ID}/dagRuns", timeout=30,
                        headers={"Authorization": f"Bearer {token}"}).json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs].count(run_id) == 1
    assert api_server.password not in json.dumps([first._asdict(), again._asdict()], default=str)


def test_a_wrong_password_is_a_failed_launch_not_a_crash(api_server, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_USERNAME", api_server.username)
    monkeypatch.setenv("AIRFLOW_PASSWORD", "not-the-password")
    launches = _launch(_alerts(1), AirflowLauncher(DAG_ID, api_server.url), tmp_path / "bad", tmp_path / "failed")
    (letter,) = collected(tmp_path / "failed")
    assert launches == [] and letter.error_type == "launch_failed" and "/auth/token: HTTP 401" in letter.message
    assert "not-the-password" not in json.dumps(letter._asdict(), default=str)
