"""`hybridflow k8s`: manifests that validate against the Flink Kubernetes
Operator's own CRD schema and Kubernetes' own schemas, and that say what they
should (the Beam job in application mode, the worker pool sidecar,
checkpoints, parallelism, the batch Job)."""

import copy
import shlex

import pytest
import yaml

from hybridflow import InvalidOptionError
from hybridflow.cli import main
from hybridflow.orchestration.k8s import K8sManifests, operator_crd, validate
from hybridflow.testing.services.pytest_plugin import unavailable

FLAGS = ("--input=s3://lake/history/*.jsonl", "--output=s3://lake/fraud")


@pytest.fixture(scope="module")
def crd():
    try:
        return operator_crd()
    except InvalidOptionError as exc:  # not provisioned: says `make tools`
        unavailable(str(exc))


def _load(directory, name):
    return yaml.safe_load((directory / name).read_text())


def test_cli_writes_manifests_that_validate(crd, tmp_path, capsys):
    assert main(["k8s", "fraud", "--out", str(tmp_path), "--check", "--parallelism", "3", *FLAGS]) == 0
    assert "manifests valid" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Dockerfile", "batch-job.yaml", "flink-data-pvc.yaml", "flinkdeployment.yaml"]
    deployment = _load(tmp_path, "flinkdeployment.yaml")
    spec = deployment["spec"]
    assert (deployment["apiVersion"], deployment["kind"], spec["flinkVersion"]) == (
        "flink.apache.org/v1beta1", "FlinkDeployment", "v1_19")
    job = spec["job"]
    assert job["entryClass"] == "org.apache.beam.runners.flink.FlinkPortableClientEntryPoint"
    assert job["jarURI"] == "local:///opt/flink/usrlib/beam-runners-flink-1.19-job-server-2.70.0.jar"
    assert job["parallelism"] == 3 and job["upgradeMode"] == "savepoint"
    assert job["args"][0] == "--driver-cmd"
    driver = shlex.split(job["args"][1])
    assert driver[:4] == ["/opt/venv/bin/hybridflow", "run", "fraud", "--profile=flink"]
    assert {"--mode=streaming", "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
            "--parallelism=3", *FLAGS} <= set(driver)
    (sidecar,) = spec["taskManager"]["podTemplate"]["spec"]["containers"]
    assert sidecar["name"] == "beam-worker-pool" and sidecar["ports"][0]["containerPort"] == 50000
    assert "apache_beam.runners.worker.worker_pool_main" in sidecar["command"]
    config = spec["flinkConfiguration"]
    assert config["state.checkpoints.dir"] == "file:///flink-data/checkpoints"
    assert config["execution.checkpointing.interval"] == "60s" and config["taskmanager.numberOfTaskSlots"] == "3"
    claim = spec["podTemplate"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == _load(tmp_path, "flink-data-pvc.yaml")["metadata"]["name"]
    batch = _load(tmp_path, "batch-job.yaml")
    (container,) = batch["spec"]["template"]["spec"]["containers"]
    assert container["args"][:4] == ["run", "fraud", "--profile=flink", "--mode=batch"]
    assert "--flink_job_server_jar=/opt/flink/usrlib/beam-runners-flink-1.19-job-server-2.70.0.jar" in container["args"]
    assert "activeDeadlineSeconds" not in batch["spec"]
    assert "COPY beam-runners-flink-1.19-job-server-2.70.0.jar /opt/flink/usrlib/" in (tmp_path / "Dockerfile").read_text()


def test_deadline_and_object_store_checkpoints(crd):
    manifests = K8sManifests("fraud", "flink", ("--deadline=30m", *FLAGS), checkpoint_dir="s3://lake/checkpoints")
    files = manifests.files()
    assert "flink-data-pvc.yaml" not in files  # checkpoints in S3: no volume
    documents = [yaml.safe_load(text) for name, text in files.items() if name.endswith(".yaml")]
    validate(documents)
    batch = yaml.safe_load(files["batch-job.yaml"])
    assert batch["spec"]["activeDeadlineSeconds"] == 3600  # the run alerts at 30 min, Kubernetes stops it at 60
    assert "--deadline=30m" in batch["spec"]["template"]["spec"]["containers"][0]["args"]


def test_validation_catches_what_the_schemas_forbid(crd):
    manifests = K8sManifests("fraud", "flink", FLAGS)
    deployment, job = manifests.flink_deployment(), manifests.batch_job()
    bad_version = copy.deepcopy(deployment)
    bad_version["spec"]["flinkVersion"] = "v1_99"
    with pytest.raises(InvalidOptionError, match=r"FlinkDeployment hybridflow-fraud: spec.flinkVersion: 'v1_99' is not one of"):
        validate([bad_version])
    bad_parallelism = copy.deepcopy(deployment)
    bad_parallelism["spec"]["job"]["parallelism"] = "two"
    with pytest.raises(InvalidOptionError, match=r"spec.job.parallelism: 'two' is not of type 'integer'"):
        validate([bad_parallelism])
    bad_job = copy.deepcopy(job)
    bad_job["spec"]["backoffLimit"] = "one"
    with pytest.raises(InvalidOptionError, match=r"Job hybridflow-fraud-batch: spec.backoffLimit: 'one'"):
        validate([bad_job])
    unknown_field = copy.deepcopy(job)
    unknown_field["spec"]["template"]["spec"]["containers"][0]["argz"] = []
    with pytest.raises(InvalidOptionError, match=r"Job hybridflow-fraud-batch: .*argz"):
        validate([unknown_field])


def test_other_profiles_write_the_batch_job_only():
    files = K8sManifests("fraud", "direct", FLAGS).files()
    assert sorted(files) == ["Dockerfile", "batch-job.yaml"]
    assert "--profile=direct" in yaml.safe_load(files["batch-job.yaml"])["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint-dir", "/tmp/ckpt"], "--checkpoint-dir=/tmp/ckpt: give s3://BUCKET/PATH"),
    (["--profile", "direct", "--mode=streaming"], "--mode=streaming on Kubernetes runs on the Flink operator"),
    (["--parallelism", "0"], "--parallelism=0: must be >= 1"),
    (["--velocity_thresold=3"], "did you mean --velocity_threshold"),
])
def test_mistakes_are_one_line_usage_errors(argv, message, tmp_path, capsys):
    assert main(["k8s", "fraud", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
