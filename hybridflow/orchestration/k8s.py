"""``hybridflow k8s``: Kubernetes manifests for a pipeline.

Written into one directory (``kubectl apply -f DIR``), from the pipeline's
own flags (checked when written, see :class:`~hybridflow.orchestration.ScheduledRun`):

- ``flinkdeployment.yaml`` (profile ``flink``, streaming): a ``FlinkDeployment``
  of the `Flink Kubernetes Operator`_ in application mode. The job manager
  runs Beam's ``FlinkPortableClientEntryPoint`` from the Flink job-server jar:
  it starts Beam's job service inside the job manager and runs the driver
  (``hybridflow run PIPELINE --mode=streaming ...``) against it; every task
  manager has the Beam Python worker pool as a sidecar on ``localhost:50000``
  (``--environment_type=EXTERNAL``). Checkpoints every ``checkpoint_interval``
  to ``checkpoint_dir``, upgrades through savepoints, ``parallelism`` slots.
- ``flink-data-pvc.yaml``: the volume of ``file://`` checkpoints (only then).
- ``batch-job.yaml``: the batch run as a Kubernetes ``Job`` (``hybridflow run
  PIPELINE --mode=batch --profile=PROFILE``; with ``flink`` a local Flink
  inside the pod), stopped by Kubernetes at twice ``--deadline``.
- ``Dockerfile``: the one image all of them run: Flink 1.19 (Java 17) with
  Python, hybridflow and the Flink job-server jar.

:func:`validate` checks the manifests against the operator's own CRD schema
(``openAPIV3Schema`` of the CRD shipped in the operator's Maven artifact,
provisioned by ``make tools``) and Kubernetes' own schemas
(``kubernetes-validate``).

.. _Flink Kubernetes Operator: https://nightlies.apache.org/flink/flink-kubernetes-operator-docs-stable/
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Optional, Sequence

import yaml

from hybridflow._pins import BEAM_VERSION, FLINK_OPERATOR_VERSION, FLINK_VERSION
from hybridflow.errors import InvalidOptionError, require
from hybridflow.orchestration import ScheduledRun, _joined

__all__ = ["K8sManifests", "validate", "operator_crd", "KUBERNETES_VERSION"]

# The Kubernetes version whose schemas the manifests are checked against.
KUBERNETES_VERSION = "1.31"
WORKER_POOL_PORT = 50000
VENV = "/opt/venv"
JOB_SERVER_JAR = f"beam-runners-flink-{FLINK_VERSION}-job-server-{BEAM_VERSION}.jar"
USRLIB = "/opt/flink/usrlib"
DATA_MOUNT = "/flink-data"
ENTRY_POINT = "org.apache.beam.runners.flink.FlinkPortableClientEntryPoint"


def _name(text: str) -> str:
    """A DNS-1123 name: lower case, digits and dashes, at most 63 characters."""
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-")


@dataclasses.dataclass(frozen=True)
class K8sManifests:
    """The manifests of one pipeline (see the module docstring).

    Args:
      pipeline: a registered pipeline name.
      profile: runner profile of the runs (``flink`` adds the FlinkDeployment).
      flags: pipeline parameters and Beam flags of both runs (``--mode=X``
        writes only that run's manifests).
      image: the image to run (built from the written ``Dockerfile``).
      namespace: Kubernetes namespace.
      parallelism: Flink parallelism (task slots) of the streaming job.
      checkpoint_dir: where Flink keeps checkpoints and savepoints: ``s3://``,
        ``gs://``, or ``file://`` under ``/flink-data`` (a volume claim is written).
      checkpoint_interval: seconds between checkpoints.
      service_account: the Flink service account the operator's Helm chart made.
    """

    pipeline: str
    profile: str = "flink"
    flags: tuple[str, ...] = ()
    image: Optional[str] = None
    namespace: str = "default"
    parallelism: int = 2
    checkpoint_dir: str = f"file://{DATA_MOUNT}/checkpoints"
    checkpoint_interval: int = 60
    service_account: str = "flink"

    def __post_init__(self):
        object.__setattr__(self, "flags", tuple(_joined(self.flags)))
        if self.parallelism < 1:
            raise InvalidOptionError(f"--parallelism={self.parallelism}: must be >= 1")
        if self.checkpoint_interval < 1:
            raise InvalidOptionError(f"--checkpoint-interval={self.checkpoint_interval}: must be >= 1 (seconds)")
        if not self.checkpoint_dir.startswith(("s3://", "gs://", f"file://{DATA_MOUNT}/")):
            raise InvalidOptionError(
                f"--checkpoint-dir={self.checkpoint_dir}: give s3://BUCKET/PATH, gs://BUCKET/PATH "
                f"or file://{DATA_MOUNT}/PATH (a volume claim is written for it)"
            )
        from hybridflow.pipelines import get_pipeline

        spec = get_pipeline(self.pipeline)
        modes = [m for m in ("streaming", "batch") if m in spec.modes]
        given = next((f.split("=", 1)[1] for f in self.flags if f.startswith("--mode=")), None)
        if given is not None:
            modes = [given]
        if self.profile != "flink" and "streaming" in modes:
            if given == "streaming":
                raise InvalidOptionError(
                    f"--mode=streaming on Kubernetes runs on the Flink operator: use --profile=flink (not {self.profile})"
                )
            modes.remove("streaming")
        flags = [f for f in self.flags if not f.startswith("--mode=")]
        runs = {}
        for mode in modes:
            extra = [f"--mode={mode}"]
            if mode == "streaming":
                extra += [
                    "--environment_type=EXTERNAL",
                    f"--environment_config=localhost:{WORKER_POOL_PORT}",
                    f"--parallelism={self.parallelism}",
                ]
            elif self.profile == "flink":
                extra.append(f"--flink_job_server_jar={USRLIB}/{JOB_SERVER_JAR}")
            runs[mode] = ScheduledRun(self.pipeline, self.profile, (*extra, *flags), relative_to=None)
        object.__setattr__(self, "_runs", runs)

    @property
    def name(self) -> str:
        return _name(f"hybridflow-{self.pipeline}")

    @property
    def image_name(self) -> str:
        from hybridflow import __version__

        return self.image or f"hybridflow-flink:{__version__}"

    def _labels(self, component: str) -> dict:
        return {
            "app.kubernetes.io/name": "hybridflow",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "hybridflow.io/pipeline": _name(self.pipeline),
        }

    def _metadata(self, name: str, component: str) -> dict:
        return {"name": name, "namespace": self.namespace, "labels": self._labels(component)}

    def _uses_volume(self) -> bool:
        return self.checkpoint_dir.startswith("file://")

    def flink_deployment(self) -> dict:
        run: ScheduledRun = self._runs["streaming"]  # type: ignore[attr-defined]
        import shlex

        driver = shlex.join([f"{VENV}/bin/hybridflow", *run.argv()])
        jvm = " ".join(run.option("job_server_jvm_properties") or [])
        config = {
            "taskmanager.numberOfTaskSlots": str(self.parallelism),
            "parallelism.default": str(self.parallelism),
            "state.backend.type": "hashmap",
            "state.checkpoints.dir": self.checkpoint_dir,
            "state.savepoints.dir": f"{self.checkpoint_dir.rstrip('/')}-savepoints",
            "execution.checkpointing.interval": f"{self.checkpoint_interval}s",
            "execution.checkpointing.mode": "EXACTLY_ONCE",
        }
        if jvm:
            config["env.java.opts.all"] = jvm
        main = {"name": "flink-main-container"}
        pod: dict[str, Any] = {"spec": {"containers": [main]}}
        if self._uses_volume():
            main["volumeMounts"] = [{"name": "flink-data", "mountPath": DATA_MOUNT}]
            pod["spec"]["volumes"] = [
                {"name": "flink-data", "persistentVolumeClaim": {"claimName": f"{self.name}-flink-data"}}
            ]
        worker_pool = {
            "name": "beam-worker-pool",
            "image": self.image_name,
            "command": [f"{VENV}/bin/python", "-m", "apache_beam.runners.worker.worker_pool_main",
                        f"--service_port={WORKER_POOL_PORT}"],
            "ports": [{"containerPort": WORKER_POOL_PORT, "name": "beam-workers"}],
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        }
        return {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": self._metadata(self.name, "streaming"),
            "spec": {
                "image": self.image_name,
                "imagePullPolicy": "IfNotPresent",
                "flinkVersion": "v" + FLINK_VERSION.replace(".", "_"),
                "serviceAccount": self.service_account,
                "flinkConfiguration": config,
                "podTemplate": pod,
                "jobManager": {"replicas": 1, "resource": {"cpu": 1, "memory": "2048m"}},
                "taskManager": {
                    "resource": {"cpu": 1, "memory": "2048m"},
                    "podTemplate": {"spec": {"containers": [worker_pool]}},
                },
                "job": {
                    "jarURI": f"local://{USRLIB}/{JOB_SERVER_JAR}",
                    "entryClass": ENTRY_POINT,
                    "args": ["--driver-cmd", driver],
                    "parallelism": self.parallelism,
                    "upgradeMode": "savepoint",
                    "state": "running",
                },
            },
        }

    def volume_claim(self) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": self._metadata(f"{self.name}-flink-data", "checkpoints"),
            "spec": {
                # the job manager and every task manager mount it
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        }

    def batch_job(self) -> dict:
        run: ScheduledRun = self._runs["batch"]  # type: ignore[attr-defined]
        spec: dict[str, Any] = {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": self._labels("batch")},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "hybridflow",
                        "image": self.image_name,
                        "command": [f"{VENV}/bin/hybridflow"],
                        "args": run.argv(),
                        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                    }],
                },
            },
        }
        if run.deadline is not None:
            # the run alerts at its deadline (and exits 3); Kubernetes stops it at twice that
            spec["activeDeadlineSeconds"] = int(2 * run.deadline)
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": self._metadata(f"{self.name}-batch", "batch"),
                "spec": spec}

    def dockerfile(self) -> str:
        from hybridflow import __version__

        return "\n".join([
            f"# The image of `hybridflow k8s {self.pipeline}`: Flink {FLINK_VERSION} (Java 17), Python, hybridflow",
            "# and Beam's Flink job server (FlinkPortableClientEntryPoint runs the driver in the job manager).",
            f"# Build it next to {JOB_SERVER_JAR} (`make tools` puts it in ~/.apache_beam/cache/jars/)",
            "# and a hybridflow wheel (`pip wheel --no-deps -w DIR .`), then push it where the cluster pulls from.",
            f"FROM flink:{FLINK_VERSION}-java17",
            "# hybridflow needs Python 3.11; the Flink image's Ubuntu 22.04 has 3.10 (deadsnakes has 3.11)",
            "RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common \\",
            "    && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update \\",
            "    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \\",
            "    && rm -rf /var/lib/apt/lists/*",
            f"RUN python3.11 -m venv {VENV}",
            "COPY hybridflow-*.* /tmp/dist/",
            f"RUN {VENV}/bin/pip install --no-cache-dir \"$(ls /tmp/dist/hybridflow-{__version__}*)[gcp,aws,kafka]\" \\",
            "    && rm -rf /tmp/dist",
            f"COPY {JOB_SERVER_JAR} {USRLIB}/{JOB_SERVER_JAR}",
            f"ENV PATH={VENV}/bin:$PATH",
            "",
        ])

    def files(self) -> dict[str, str]:
        """File name -> content."""
        runs = self._runs  # type: ignore[attr-defined]
        out = {}
        if "streaming" in runs:
            out["flinkdeployment.yaml"] = _dump(self.flink_deployment())
            if self._uses_volume():
                out["flink-data-pvc.yaml"] = _dump(self.volume_claim())
        if "batch" in runs:
            out["batch-job.yaml"] = _dump(self.batch_job())
        out["Dockerfile"] = self.dockerfile()
        return out

    def write(self, directory: str) -> list[pathlib.Path]:
        path = pathlib.Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files().items():
            (path / name).write_text(text, encoding="utf-8")
            written.append(path / name)
        return written


def _dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)


def operator_crd(kind: str = "FlinkDeployment") -> dict:
    """The Flink Kubernetes Operator's CRD of ``kind`` (provisioned by ``make tools``)."""
    from hybridflow.testing.services._process import tools_home

    plural = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}[kind]
    path = tools_home() / "k8s" / f"flink-kubernetes-operator-{FLINK_OPERATOR_VERSION}" / (
        f"{plural}.flink.apache.org-v1.yml")
    if not path.is_file():
        raise InvalidOptionError(
            f"the Flink Kubernetes Operator {FLINK_OPERATOR_VERSION} CRDs are not provisioned ({path} missing): "
            "run `make tools`"
        )
    return yaml.safe_load(path.read_text())


def validate(documents: Sequence[dict], kubernetes_version: str = KUBERNETES_VERSION) -> None:
    """Checks each manifest against its schema: Kubernetes' own (``kubernetes-validate``)
    for built-in kinds, the operator's CRD ``openAPIV3Schema`` for ``FlinkDeployment``.
    Raises :class:`InvalidOptionError` naming the document, the field and the problem."""
    jsonschema = require("jsonschema", "validating Kubernetes manifests", "k8s")
    kubernetes_validate = require("kubernetes_validate", "validating Kubernetes manifests", "k8s")
    for document in documents:
        kind, name = document.get("kind"), document.get("metadata", {}).get("name")
        if kind == "FlinkDeployment":
            api_group, _, api_version = document["apiVersion"].partition("/")
            crd = operator_crd(kind)
            versions = {v["name"]: v for v in crd["spec"]["versions"]}
            if crd["spec"]["group"] != api_group or api_version not in versions:
                raise InvalidOptionError(f"{kind} {name}: apiVersion {document['apiVersion']} is not served by the CRD")
            schema = versions[api_version]["schema"]["openAPIV3Schema"]
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
            if errors:
                first = errors[0]
                where = ".".join(str(p) for p in first.path) or "(top)"
                raise InvalidOptionError(f"{kind} {name}: {where}: {first.message}")
        else:
            try:
                kubernetes_validate.validate(document, kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path) or "(top)"
                raise InvalidOptionError(f"{kind} {name}: {where}: {exc.message}") from None
