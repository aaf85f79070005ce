"""``hybridflow airflow-dag``: an Airflow (or Cloud Composer) DAG file for a pipeline.

The DAG has two tasks:

- ``run_PIPELINE``: the batch run. With a runner profile (``direct``,
  ``prism``, ``flink``, ``spark``, ``dataflow``) it is the Beam provider's
  ``BeamRunPythonPipelineOperator`` starting ``python -m hybridflow run
  PIPELINE --profile=... [flags]`` (the operator's ``py_options`` are ``-m
  hybridflow run`` and its ``py_file`` is the pipeline name), so the run
  resolves its flags exactly as the CLI does; on Dataflow the operator
  follows the job. With ``flex_template=True`` it is the Google provider's
  ``DataflowStartFlexTemplateOperator`` launching the pipeline's built flex
  template (``hybridflow template launch``), its parameters checked now.
- ``wait_for_success_marker``: a sensor on ``<output>/_SUCCESS``, the marker
  a successful run publishes; downstream tasks hang off it
  (``dag.get_task("wait_for_success_marker") >> my_task``).

The deadline (``--deadline``) is the run's own check: past it ``hybridflow
run`` alerts (stderr, ``--alerts-webhook``) and exits with 3, which fails the
task; Airflow stops the task at twice the deadline (``execution_timeout``),
and the sensor gives up at the same point. (Airflow 3 removed task SLAs;
its DAG-level ``DeadlineAlert`` needs a callback of your own.)

The file imports from Airflow 2 and 3 alike (Composer 2 and 3).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import sys
import textwrap
from typing import Optional

from hybridflow.errors import InvalidOptionError
from hybridflow.orchestration import ScheduledRun, check_schedule

__all__ = ["AirflowDag"]


def _options_dict(flags) -> dict:
    """``--name=value`` flags -> the operator's ``pipeline_options`` (repeated: a list; bare: True)."""
    options: dict = {}
    for flag in flags:
        name, sep, value = flag[2:].partition("=")
        value = value if sep else True
        if name in options:
            previous = options[name]
            options[name] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            options[name] = value
    return options


@dataclasses.dataclass(frozen=True)
class AirflowDag:
    """The DAG of one scheduled batch run (see the module docstring).

    Args:
      run: the run (profile, flags, ``--deadline``, ``--output``).
      schedule: five cron fields or a preset (``@daily``).
      dag_id: default ``hybridflow_PIPELINE`` (``..._flex`` with ``flex_template``).
      python: the interpreter that has hybridflow installed (default: this one;
        ``python3`` on Cloud Composer with hybridflow in the environment's packages).
      flex_template: launch the built flex template instead (Dataflow only).
      bucket: the flex template's ``gs://`` bucket (as ``hybridflow template launch``).
      poke_interval: seconds between the sensor's checks.
      sensor_timeout: seconds the sensor waits (default: twice the deadline, else a day).
      start_date: the DAG's start (default: today, UTC).
    """

    run: ScheduledRun
    schedule: str = "@daily"
    dag_id: Optional[str] = None
    python: str = sys.executable
    flex_template: bool = False
    bucket: Optional[str] = None
    poke_interval: int = 60
    sensor_timeout: Optional[int] = None
    start_date: Optional[datetime.date] = None

    def __post_init__(self):
        object.__setattr__(self, "schedule", check_schedule(self.schedule))
        if self.run.mode != "batch":
            raise InvalidOptionError(f"--mode={self.run.mode}: an Airflow DAG schedules batch runs; use --mode=batch")
        if self.dag_id is not None and not re.match(r"^[A-Za-z0-9_.-]{1,250}$", self.dag_id):
            raise InvalidOptionError(f"--dag-id={self.dag_id!r}: use letters, digits, _ . - (at most 250)")
        if self.flex_template:
            object.__setattr__(self, "_flex", self._flex_launch())
        self.run.success_marker()  # an output is needed for the sensor

    @property
    def id(self) -> str:
        flex = "_flex" if self.flex_template else ""
        return self.dag_id or re.sub(r"[^A-Za-z0-9_]", "_", f"hybridflow_{self.run.pipeline}{flex}")

    def _flex_launch(self):
        from hybridflow.flex.launch import FlexLaunch
        from hybridflow.flex.metadata import check_parameters, template_parameters
        from hybridflow.pipelines import get_pipeline

        if "Dataflow" not in str(self.run.option("runner")):
            raise InvalidOptionError(f"--flex-template launches on Dataflow: use --runner=dataflow (not {self.run.profile})")
        spec = get_pipeline(self.run.pipeline)
        names = {p.name for p in template_parameters(spec)}
        given = _options_dict(self.run.flags)
        # where the job runs and its deadline shape the DAG task; everything else must be a template parameter
        unused = sorted(set(given) - names - {"project", "region", "temp_location", "deadline"})
        if unused:
            raise InvalidOptionError(
                f"--{unused[0]}: not a parameter of the {spec.name} flex template (its metadata.json); "
                "drop it, or run without --flex-template"
            )
        parameters = {k: str(v) for k, v in given.items() if k in names}
        check_parameters(spec, parameters)
        return FlexLaunch(
            pipeline=self.run.pipeline,
            project=self.run.option("project"),
            region=self.run.option("region"),
            parameters=parameters,
            bucket=self.bucket,
        )

    def _timeout(self) -> Optional[int]:
        return None if self.run.deadline is None else int(round(2 * self.run.deadline))

    def _run_task(self) -> str:
        timeout = self._timeout()
        timeout_arg = f"\n        execution_timeout=datetime.timedelta(seconds={timeout})," if timeout else ""
        if self.flex_template:
            launch = self._flex  # type: ignore[attr-defined]
            body = {
                "launchParameter": {
                    "jobName": f"hf-{self.run.pipeline}-{{{{ ts_nodash | lower }}}}",
                    "containerSpecGcsPath": launch.spec_uri,
                    "parameters": launch.parameters,
                    "environment": {"tempLocation": f"{launch.bucket_uri}/tmp"},
                }
            }
            return f"""\
    run = DataflowStartFlexTemplateOperator(
        task_id={f"run_{self.run.pipeline}"!r},
        project_id={launch.project!r},
        location={launch.region!r},
        body={body!r},
        wait_until_finished=True,{timeout_arg}
    )"""
        options = _options_dict(self.run.argv()[2:])  # --profile=..., --mode=..., the flags
        dataflow = ""
        runner = str(self.run.option("runner")).rsplit(".", 1)[-1]
        if runner == "DataflowRunner":
            config = {"project_id": self.run.option("project"), "location": self.run.option("region"),
                      "job_name": f"hf-{self.run.pipeline}", "append_job_name": True}
            dataflow = f"\n        dataflow_config={config!r},"
        return f"""\
    run = BeamRunPythonPipelineOperator(
        task_id={f"run_{self.run.pipeline}"!r},
        runner={runner!r},
        # python -m hybridflow run PIPELINE --NAME=VALUE ...: the hybridflow CLI, flags resolved as it does
        py_interpreter={self.python!r},
        py_options=["-m", "hybridflow", "run"],
        py_file={self.run.pipeline!r},
        pipeline_options={options!r},{dataflow}{timeout_arg}
    )"""

    def _sensor_task(self) -> str:
        marker = self.run.success_marker()
        timeout = self.sensor_timeout or self._timeout() or 24 * 3600
        common = f"poke_interval={self.poke_interval},\n        timeout={timeout},\n        mode=\"reschedule\","
        if marker.startswith("gs://"):
            bucket, _, name = marker[len("gs://"):].partition("/")
            return f"""\
    marker = GCSObjectExistenceSensor(
        task_id="wait_for_success_marker",
        bucket={bucket!r},
        object={name!r},
        {common}
    )"""
        if "://" in marker:
            raise InvalidOptionError(
                f"--output={self.run.output}: the DAG's success-marker sensor watches local paths and gs:// only"
            )
        return f"""\
    marker = PythonSensor(
        task_id="wait_for_success_marker",
        python_callable=os.path.exists,
        op_args=[{marker!r}],
        {common}
    )"""

    def render(self) -> str:
        """The DAG file's text."""
        start = self.start_date or datetime.datetime.now(datetime.UTC).date()
        imports = ["import datetime", "import os", ""]
        imports += [
            "try:  # Airflow 3",
            "    from airflow.sdk import DAG",
            "    from airflow.providers.standard.sensors.python import PythonSensor",
            "except ImportError:  # Airflow 2 (Cloud Composer 2)",
            "    from airflow import DAG",
            "    from airflow.sensors.python import PythonSensor",
        ]
        if self.flex_template:
            imports.append("from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator")
        else:
            imports.append("from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator")
        if self.run.success_marker().startswith("gs://"):
            imports.append("from airflow.providers.google.cloud.sensors.gcs import GCSObjectExistenceSensor")
        command = " ".join(["hybridflow", "airflow-dag", self.run.pipeline])
        header = textwrap.dedent(f'''\
            """Airflow DAG {self.id}: the hybridflow pipeline {self.run.pipeline!r} in batch, {self.schedule}.

            Written by `{command} ...`: run_{self.run.pipeline} runs it, wait_for_success_marker
            waits for {self.run.success_marker()}; hang downstream tasks off the sensor.
            """
            ''')
        body = f"""
with DAG(
    dag_id={self.id!r},
    schedule={self.schedule!r},
    start_date=datetime.datetime({start.year}, {start.month}, {start.day}, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hybridflow", {self.run.pipeline!r}],
) as dag:
{self._run_task()}
{self._sensor_task()}
    run >> marker
"""
        text = header + "\n" + "\n".join(imports) + "\n" + body
        compile(text, f"{self.id}.py", "exec")  # a DAG that does not parse is a bug here, not in Airflow
        return text
