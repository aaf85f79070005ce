"""The examples of docs/orchestration.md (and docs/runners.md's Dataproc one) run as written."""

import ast

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow import Alert, InvalidOptionError
from hybridflow.orchestration.k8s import operator_crd
from hybridflow.testing import Collect, collected
from hybridflow.testing.services.pytest_plugin import unavailable
from tests._docs import example, run_sh


def test_airflow_dag_examples(tmp_path):
    done = run_sh(example("orchestration.md", "airflow-dag"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote dags/hybridflow_fraud.py (DAG hybridflow_fraud)" in done.stdout
    text = (tmp_path / "dags" / "hybridflow_fraud.py").read_text()
    ast.parse(text)
    assert f"'input': '{tmp_path}/history/*.jsonl'" in text and f"op_args=['{tmp_path}/out/fraud/_SUCCESS']" in text
    done = run_sh(example("orchestration.md", "airflow-flex"), tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "dags" / "hybridflow_fraud_flex.py").read_text()
    assert "DataflowStartFlexTemplateOperator(" in text and "'gs://my-bucket/templates/fraud.json'" in text


def test_airflow_launcher_example(tmp_path):
    namespace = {"__name__": "orchestration_example"}
    exec(compile(example("orchestration.md", "airflow-launcher"), "orchestration.md", "exec"), namespace)
    start, end = Timestamp.of(1767225600), Timestamp.of(1767225660)
    alerts = [Alert(f"a{i}", "velocity", "card-1", 12.0, 10.0, end, start, end, "n=12 >= 10") for i in range(2)]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        result = namespace["trigger_investigations"](p | beam.Create(alerts), dry_run=True)
        result.launches | Collect(str(tmp_path / "out"))
        result.dead_letters | "Failed" >> Collect(str(tmp_path / "failed"))
    (record,) = collected(str(tmp_path / "out"))
    assert collected(str(tmp_path / "failed")) == []
    assert (record.status, record.pipeline) == ("dry_run", "hybridflow_fraud")
    assert record.command == ("POST http://airflow.internal:8080/api/v2/dags/hybridflow_fraud/dagRuns "
                              f"dag_run_id=hybridflow-{record.launch_id}")


def test_cron_example(tmp_path):
    (tmp_path / "history").mkdir()
    done = run_sh(example("orchestration.md", "cron-line"), tmp_path)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"0 2 * * * cd {tmp_path} && flock -n /tmp/hybridflow-fraud.lock timeout -s TERM 7200 ")
    assert line.endswith(f"--output={tmp_path}/out/fraud >> /tmp/hybridflow-fraud.log 2>&1")


def test_k8s_example(tmp_path):
    try:
        operator_crd()  # --check needs the CRDs `make tools` provisions
    except InvalidOptionError as exc:
        unavailable(str(exc))
    done = run_sh(example("orchestration.md", "k8s"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "manifests valid" in done.stdout
    assert sorted(p.name for p in (tmp_path / "k8s" / "fraud").iterdir()) == [
        "Dockerfile", "batch-job.yaml", "flink-data-pvc.yaml", "flinkdeployment.yaml"]


def test_dataproc_profile_example(tmp_path):
    done = run_sh(example("runners.md", "dataproc-profile"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "profile dataproc needs --flink_master, --environment_config, --temp_location" in done.stderr
