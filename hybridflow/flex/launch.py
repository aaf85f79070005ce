"""Building and launching a pipeline's flex template on Dataflow with gcloud.

:class:`FlexLaunch` holds what a launch needs (project, region, bucket, image,
parameters, Dataflow job options) and turns it into the commands, in order:

1. hybridflow's wheel into ``templates/PIPELINE/dist/``
   (:func:`~hybridflow.flex.package.wheel_command`: built from the checkout,
   or this release downloaded when hybridflow runs from an installed wheel);
2. ``gcloud builds submit`` of ``templates/PIPELINE`` to Cloud Build, which
   builds the Dockerfile and pushes the image (no local Docker needed), tagged
   by content (:func:`~hybridflow.flex.package.image_tag`);
3. ``gcloud storage cp`` of the template spec file (image + metadata.json +
   the image as the workers' SDK container, written locally by
   :meth:`FlexLaunch.write_spec`) to ``gs://BUCKET/templates/PIPELINE.json``;
4. ``gcloud dataflow flex-template run``: a job from that spec, with the
   parameters (``sdk_container_image`` = the image, unless given) and the
   Dataflow job options (:data:`JOB_OPTION_FLAGS`) as gcloud's own flags.

The spec file is the one ``gcloud dataflow flex-template build`` writes, but
complete: gcloud (checked with version 528) copies only the name,
description and parameters of metadata.json and drops ``streaming``,
``supportsAtLeastOnce``, ``supportsExactlyOnce`` and ``defaultStreamingMode``.
A test compares the two with ``gcloud ... build --print-only``.

Parameters are checked offline first (names, regexes, the pipeline's own
parser), and the committed template must match a fresh build, so a launch
that would fail on Dataflow fails here, before anything is uploaded.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any, Mapping, Optional, Sequence

from hybridflow.errors import ConnectorError, InvalidOptionError, UsageError
from hybridflow.flex.files import SDK_BASE_IMAGE, render_template
from hybridflow.flex.metadata import check_parameters
from hybridflow.redaction import redact
from hybridflow.flex.package import image_tag, wheel_command

__all__ = ["FlexLaunch", "JOB_OPTION_FLAGS", "run_commands", "gcloud_parameters", "job_name_for"]

#: Dataflow job options of a launch -> the ``gcloud dataflow flex-template run`` flag that sets
#: it. Lists are joined with commas; mappings (labels) as ``k=v,k2=v2``; True means a bare flag.
JOB_OPTION_FLAGS: Mapping[str, str] = {
    "service_account_email": "--service-account-email",
    "network": "--network",
    "subnetwork": "--subnetwork",
    "disable_public_ips": "--disable-public-ips",
    "worker_machine_type": "--worker-machine-type",
    "num_workers": "--num-workers",
    "max_workers": "--max-workers",
    "temp_location": "--temp-location",
    "staging_location": "--staging-location",
    "additional_experiments": "--additional-experiments",
    "additional_user_labels": "--additional-user-labels",
}
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_PROJECT = re.compile(r"^[a-z][-a-z0-9:.]{4,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


def job_name_for(*parts: str) -> str:
    """A valid Dataflow job name from free text (lower case, dashes, <= 63 chars)."""
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "hf-" + name
    return name[:63].rstrip("-")


_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# delimiters tried first, readable in a command line; then any other character
_DELIMITERS = "~|;#@:!%+/"


def gcloud_parameters(values: Mapping[str, str]) -> str:
    """``--parameters`` value for gcloud: ``k=v,k2=v2``, or with gcloud's
    ``^DELIM^`` escape (``gcloud topic escaping``) when a value contains a
    comma. Every value a command line can hold is encoded: the delimiter is
    one character found in no item (a later one if every readable one is
    taken). A NUL, or text that is not valid Unicode, cannot be an argument
    at all: InvalidOptionError naming the parameter."""
    for name, value in values.items():
        if not _PARAMETER_NAME.match(str(name)):
            raise InvalidOptionError(f"template parameter name {name!r}: letters, digits and _ only")
        if "\0" in value or not _encodable(value):
            raise InvalidOptionError(
                f"template parameter {name}: a NUL byte or an unpaired surrogate cannot be passed to gcloud"
            )
    items = [f"{k}={v}" for k, v in values.items()]
    if not any("," in item for item in items):
        return ",".join(items)
    used = set("".join(items)) | {"^"}
    delimiter = next(d for d in _candidates() if d not in used)
    return f"^{delimiter}^" + delimiter.join(items)


def _candidates():
    yield from _DELIMITERS
    code = 0xA1
    while True:  # a finite text leaves some character unused
        if not 0xD800 <= code <= 0xDFFF:
            yield chr(code)
        code += 1


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class FlexLaunch:
    """One launch of a pipeline's flex template.

    Attributes:
      pipeline: the registered pipeline name.
      project, region: the Google Cloud project and Dataflow region.
      parameters: template parameter values (``{"output": "gs://b/out"}``).
      bucket: ``gs://BUCKET[/prefix]`` for the template spec, temp and
        staging files (default ``gs://PROJECT-hybridflow``).
      image: the template image, also the workers' SDK container (default
        Artifact Registry ``REGION-docker.pkg.dev/PROJECT/hybridflow/PIPELINE:TAG``,
        TAG from the lock and the package's content).
      job_name: the Dataflow job name (default ``hybridflow-PIPELINE-UTCTIME``).
      template_dir: the committed template (default ``templates/PIPELINE``).
      job_options: Dataflow job options by :data:`JOB_OPTION_FLAGS` name
        (``{"max_workers": 10, "disable_public_ips": True,
        "additional_user_labels": {"team": "fraud"}}``); temp and staging
        locations default to ``BUCKET/tmp`` and ``BUCKET/staging``.
    """

    pipeline: str
    project: str
    region: str
    parameters: Mapping[str, str] = dataclasses.field(default_factory=dict)
    bucket: Optional[str] = None
    image: Optional[str] = None
    job_name: Optional[str] = None
    template_dir: Optional[str] = None
    job_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    gcloud: str = "gcloud"

    def __post_init__(self):
        if not _PROJECT.match(self.project or ""):
            raise InvalidOptionError(
                f"--project={self.project!r}: not a Google Cloud project id (6-30 lower-case letters, digits, dashes)"
            )
        if not _REGION.match(self.region or ""):
            raise InvalidOptionError(f"--region={self.region!r}: not a Dataflow region (e.g. us-central1)")
        if self.bucket is not None and not re.match(r"^gs://[a-z0-9][-_.a-z0-9]{1,221}(/.*)?$", self.bucket):
            raise InvalidOptionError(f"--bucket={self.bucket!r}: give gs://BUCKET or gs://BUCKET/prefix")
        if self.job_name is not None and not _JOB_NAME.match(self.job_name):
            raise InvalidOptionError(
                f"--job-name={self.job_name!r}: lower-case letters, digits and dashes, starting with a letter"
            )
        unknown = sorted(set(self.job_options) - set(JOB_OPTION_FLAGS))
        if unknown:
            raise InvalidOptionError(f"unknown Dataflow job option {unknown[0]!r}: use {', '.join(JOB_OPTION_FLAGS)}")
        for name in ("temp_location", "staging_location"):
            value = self.job_options.get(name)
            if value is not None and not str(value).startswith("gs://"):
                raise InvalidOptionError(f"--{name.replace('_', '-')}={value!r}: give a gs://BUCKET/path")
        for name in ("num_workers", "max_workers"):
            value = self.job_options.get(name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise InvalidOptionError(f"--{name.replace('_', '-')}={value!r}: a whole number >= 1")
        for key in self.job_options.get("additional_user_labels") or {}:
            if not _LABEL.match(key):
                raise InvalidOptionError(
                    f"--label {key}=...: label keys are lower-case letters, digits, _ and -, starting with a letter"
                )

    # -- derived values ---------------------------------------------------
    @property
    def bucket_uri(self) -> str:
        return (self.bucket or f"gs://{self.project}-hybridflow").rstrip("/")

    @property
    def image_uri(self) -> str:
        return self.image or f"{self.region}-docker.pkg.dev/{self.project}/hybridflow/{self.pipeline}:{image_tag()}"

    @property
    def spec_uri(self) -> str:
        return f"{self.bucket_uri}/templates/{self.pipeline}.json"

    @property
    def directory(self) -> pathlib.Path:
        return pathlib.Path(self.template_dir or f"templates/{self.pipeline}")

    @property
    def spec_file(self) -> pathlib.Path:
        """The local copy of the template spec file (in the gitignored dist/)."""
        return self.directory / "dist" / f"{self.pipeline}-spec.json"

    def resolved_job_name(self) -> str:
        if self.job_name:
            return self.job_name
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        return job_name_for("hybridflow", self.pipeline, stamp)

    # -- checks -----------------------------------------------------------
    def check(self) -> None:
        """Offline checks: the parameters, and the template on disk is current."""
        from hybridflow.pipelines import get_pipeline

        spec = get_pipeline(self.pipeline)
        check_parameters(spec, self.parameters)
        drift = render_template(spec, self._base_image()).drift(self.directory)
        if drift:
            raise UsageError(
                f"{self.directory}: {', '.join(drift)} missing or out of date: "
                f"run `hybridflow template build {self.pipeline} --out {self.directory}` first"
            )

    def spec(self) -> dict:
        """The flex template spec file: the image, the SDK language, metadata.json."""
        metadata = json.loads((self.directory / "metadata.json").read_text(encoding="utf-8"))
        return {
            "image": self.image_uri,
            "sdkInfo": {"language": "PYTHON"},
            "metadata": metadata,
            # the same image runs the workers: everything is installed in it
            "defaultEnvironment": {"sdkContainerImage": self.image_uri},
        }

    def write_spec(self) -> pathlib.Path:
        """Writes :meth:`spec` to :attr:`spec_file` (local; uploaded by a command)."""
        self.spec_file.parent.mkdir(parents=True, exist_ok=True)
        self.spec_file.write_text(json.dumps(self.spec(), indent=2) + "\n", encoding="utf-8")
        return self.spec_file

    def _base_image(self) -> str:
        """The FROM image of the template's Dockerfile (``template build --image``)."""
        dockerfile = self.directory / "Dockerfile"
        found = re.search(r"^FROM (\S+)", dockerfile.read_text(encoding="utf-8"), re.M) if dockerfile.is_file() else None
        return found.group(1) if found else SDK_BASE_IMAGE

    # -- commands ---------------------------------------------------------
    def build_commands(self) -> list[list[str]]:
        """hybridflow's wheel, image build (Cloud Build), spec upload."""
        return [
            wheel_command(self.directory / "dist"),
            [self.gcloud, "builds", "submit", str(self.directory), f"--tag={self.image_uri}",
             f"--project={self.project}"],
            [self.gcloud, "storage", "cp", str(self.spec_file), self.spec_uri, f"--project={self.project}"],
        ]

    def _job_flags(self) -> list[str]:
        options = {"temp_location": f"{self.bucket_uri}/tmp", "staging_location": f"{self.bucket_uri}/staging",
                   **self.job_options}
        flags = []
        for name, flag in JOB_OPTION_FLAGS.items():
            value = options.get(name)
            if value is None or value is False or value == [] or value == {}:
                continue
            if value is True:
                flags.append(flag)
            elif isinstance(value, Mapping):
                flags.append(f"{flag}={','.join(f'{k}={v}' for k, v in value.items())}")
            elif isinstance(value, (list, tuple)):
                flags.append(f"{flag}={','.join(map(str, value))}")
            else:
                flags.append(f"{flag}={value}")
        return flags

    def run_command(self, job_name: Optional[str] = None) -> list[str]:
        """``gcloud dataflow flex-template run`` of the built spec; the workers
        run the template image (``sdk_container_image``) unless a parameter says otherwise."""
        parameters = {**self.parameters}
        parameters.setdefault("sdk_container_image", self.image_uri)
        return [
            self.gcloud, "dataflow", "flex-template", "run", job_name or self.resolved_job_name(),
            f"--template-file-gcs-location={self.spec_uri}",
            f"--region={self.region}", f"--project={self.project}",
            *self._job_flags(),
            f"--parameters={gcloud_parameters(parameters)}",
        ]

    def commands(self, build: bool = True, job_name: Optional[str] = None) -> list[list[str]]:
        return (self.build_commands() if build else []) + [self.run_command(job_name)]


def render_commands(commands: Sequence[Sequence[str]]) -> str:
    """Shell lines for ``commands``, redacted (:func:`hybridflow.redaction.redact`)."""
    return redact("\n".join(shlex.join(command) for command in commands))


def run_commands(commands: Sequence[Sequence[str]], out=None) -> None:
    """Runs ``commands`` in order; stops at the first failure (ConnectorError)."""
    out = out or sys.stdout
    for command in commands:
        if shutil.which(command[0]) is None:
            raise UsageError(
                f"{command[0]} not found on PATH: install the Google Cloud CLI (gcloud), "
                "or pass --dry-run to print the commands"
            )
        print(f"+ {redact(shlex.join(command))}", file=out, flush=True)
        completed = subprocess.run(list(command))
        if completed.returncode != 0:
            raise ConnectorError(
                f"`{redact(shlex.join(command[:4]))} ...` failed with exit code {completed.returncode}; "
                "its output is above"
            )
