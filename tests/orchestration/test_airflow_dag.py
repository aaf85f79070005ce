"""`hybridflow airflow-dag` writes: the operator and its arguments, the deadline,
the success-marker sensor, and its mistakes as one-line usage errors. (The DAG
running in a real Airflow: tests/orchestration/test_airflow.py.)"""

import ast

import pytest

from hybridflow.cli import main
from hybridflow.orchestration import ScheduledRun
from hybridflow.orchestration.airflow import AirflowDag


def _call_kwargs(text, name):
    """The keyword arguments (as Python values where literal) of the call of ``name`` in the DAG file."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    out[kw.arg] = ast.unparse(kw.value)
            return out
    raise AssertionError(f"no call of {name}")


def test_beam_operator_runs_the_cli_with_the_profile(tmp_path):
    run = ScheduledRun("fraud", "flink", ["--input=/data/history/*.jsonl", "--output=out/fraud", "--deadline=45m"])
    text = AirflowDag(run, schedule="0 3 * * *", python="/srv/venv/bin/python").render()
    beam = _call_kwargs(text, "BeamRunPythonPipelineOperator")
    assert beam["runner"] == "FlinkRunner"
    assert (beam["py_interpreter"], beam["py_options"], beam["py_file"]) == (
        "/srv/venv/bin/python", ["-m", "hybridflow", "run"], "fraud")
    assert beam["pipeline_options"]["profile"] == "flink" and beam["pipeline_options"]["mode"] == "batch"
    assert beam["pipeline_options"]["deadline"] == "45m"
    assert beam["execution_timeout"] == "datetime.timedelta(seconds=5400)"
    output = beam["pipeline_options"]["output"]
    assert output.startswith("/") and output.endswith("/out/fraud")  # absolute: Airflow's cwd is not ours
    sensor = _call_kwargs(text, "PythonSensor")
    assert sensor["op_args"] == [f"{output}/_SUCCESS"] and sensor["timeout"] == 5400
    assert _call_kwargs(text, "DAG")["schedule"] == "0 3 * * *"
    assert "run >> marker" in text


def test_dataflow_runner_and_flex_template():
    flags = ["--project=my-project", "--region=us-central1", "--temp_location=gs://b/tmp",
             "--input=gs://b/history/*.jsonl", "--output=gs://b/fraud"]
    text = AirflowDag(ScheduledRun("fraud", "dataflow", flags)).render()
    beam = _call_kwargs(text, "BeamRunPythonPipelineOperator")
    assert beam["runner"] == "DataflowRunner"
    assert beam["dataflow_config"]["project_id"] == "my-project" and beam["dataflow_config"]["location"] == "us-central1"
    gcs = _call_kwargs(text, "GCSObjectExistenceSensor")
    assert (gcs["bucket"], gcs["object"]) == ("b", "fraud/_SUCCESS")

    flex = AirflowDag(ScheduledRun("fraud", "dataflow", flags), flex_template=True, bucket="gs://tpl").render()
    launch = _call_kwargs(flex, "DataflowStartFlexTemplateOperator")
    parameter = launch["body"]["launchParameter"]
    assert parameter["containerSpecGcsPath"] == "gs://tpl/templates/fraud.json"
    assert parameter["parameters"] == {"mode": "batch", "input": "gs://b/history/*.jsonl", "output": "gs://b/fraud"}
    assert (launch["project_id"], launch["location"]) == ("my-project", "us-central1")
    assert "BeamRunPythonPipelineOperator" not in flex


@pytest.mark.parametrize("argv, message", [
    (["--mode=streaming"], "an Airflow DAG schedules batch runs"),
    (["--schedule", "every day"], "--schedule='every day': give five cron fields"),
    (["--flex-template"], "--flex-template launches on Dataflow: use --runner=dataflow"),
    (["--runner", "dataflow"], "profile dataflow needs --project, --region, --temp_location"),
    (["--output=s3://b/out"], "the DAG's success-marker sensor watches local paths and gs:// only"),
    (["--dag-id", "no spaces please"], "--dag-id='no spaces please'"),
    (["--runner", "nosuch"], "unknown profile 'nosuch'"),
    (["--runner=dataflow", "--flex-template", "--project=p", "--region=us-central1", "--temp_location=gs://b/t",
      "--output=gs://b/o", "--metrics_port=9464"], "--metrics_port: not a parameter of the fraud flex template"),
])
def test_mistakes_are_one_line_usage_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "dag.py"
    assert main(["airflow-dag", "fraud", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
