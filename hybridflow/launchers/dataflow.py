"""FlexTemplateLauncher: a job from a pipeline's flex template on Dataflow."""

from __future__ import annotations

from typing import Mapping, Optional

from hybridflow.errors import InvalidOptionError
from hybridflow.launchers import EXAMPLE_REQUEST, Launcher, LaunchRequest, LaunchStatus, fill

__all__ = ["FlexTemplateLauncher"]


class FlexTemplateLauncher(Launcher):
    """Runs ``gcloud dataflow flex-template run`` of a built template.

    The template must have been built and uploaded once (``hybridflow
    template launch PIPELINE ...`` does it). Each launch gets a job name made
    from the pipeline, the rule and the launch id; Dataflow refuses a second
    active job of the same name, so a replayed launch does not start twice.

    Args:
      pipeline: a registered pipeline name (the template's).
      project, region: where the job runs.
      parameters: template parameters; values may use ``{launch_id}`` and
        the other placeholders. Checked offline now (names, regexes, the
        pipeline's parser, required parameters).
      bucket: the ``gs://`` bucket of the template spec, temp and staging
        files (default ``gs://PROJECT-hybridflow``, as ``template launch``).
      dry_run: build and record the command without running it.
      timeout: seconds to wait for gcloud to submit the job.

    Example::

        FlexTemplateLauncher("fraud", project="my-project", region="us-central1",
                             parameters={"mode": "batch", "input": "gs://b/history/*.jsonl",
                                         "output": "gs://b/investigations/{launch_id}"})
    """

    backend = "dataflow-flex-template"

    def __init__(
        self,
        pipeline: str,
        project: str,
        region: str,
        parameters: Mapping[str, str],
        bucket: Optional[str] = None,
        dry_run: bool = False,
        timeout: float = 600.0,
        gcloud: str = "gcloud",
    ):
        super().__init__(pipeline, dry_run=dry_run, timeout=timeout)
        self.project = project
        self.region = region
        self.parameters = dict(parameters)
        self.bucket = bucket
        self.gcloud = gcloud
        try:
            self._flex(EXAMPLE_REQUEST)  # validates project, region, bucket, parameters
        except InvalidOptionError as exc:
            raise InvalidOptionError(f"FlexTemplateLauncher({pipeline!r}): {exc}") from None

    def _flex(self, request: LaunchRequest):
        from hybridflow.flex.launch import FlexLaunch, job_name_for
        from hybridflow.flex.metadata import check_parameters
        from hybridflow.pipelines import get_pipeline

        parameters = {name: fill(value, request) for name, value in self.parameters.items()}
        check_parameters(get_pipeline(self.pipeline), parameters)
        return FlexLaunch(
            pipeline=self.pipeline,
            project=self.project,
            region=self.region,
            parameters=parameters,
            bucket=self.bucket,
            job_name=job_name_for("hf", self.pipeline, request.rule, request.launch_id),
            gcloud=self.gcloud,
        )

    def command(self, request: LaunchRequest) -> list[str]:
        # gcloud prints the new job's id alone with this format
        return [*self._flex(request).run_command(), "--format=value(job.id)"]

    def job(self, request: LaunchRequest, stdout: str) -> str:
        job_id = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
        return job_id or self._flex(request).job_name

    def succeeded_status(self) -> LaunchStatus:
        return LaunchStatus.SUBMITTED
