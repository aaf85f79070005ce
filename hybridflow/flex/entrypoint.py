"""What a flex template's main.py runs: :func:`run_template`.

The Dataflow launcher runs ``main.py --NAME=VALUE ... --runner=DataflowRunner
--project=... --region=... --temp_location=... [--template_location=...]``.
:func:`run_template` resolves those flags exactly as ``hybridflow run`` does
(the ``dataflow`` profile underneath, strict flag checking, the pipeline's
``validate``), builds the graph, runs it and, on Dataflow, returns as soon as
the job is submitted (or written to ``--template_location``, or built with
``--dry_run=True``) without waiting for it. With another ``--runner`` (a
local smoke test of the template) it waits and prints the run summary.
"""

from __future__ import annotations

import logging
from typing import Sequence

__all__ = ["run_template", "is_dataflow"]


def is_dataflow(options) -> bool:
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner or ""
    runner = runner if isinstance(runner, str) else type(runner).__name__
    return "dataflow" in runner.lower()


def _job_description(job, result, options) -> str:
    """One line on what the Dataflow runner did with ``job`` (an apiclient.Job)."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, TestOptions

    gc = options.view_as(GoogleCloudOptions)
    name = job.proto.name
    if options.view_as(TestOptions).dry_run:
        transforms = len(job.proto_pipeline.components.transforms)
        return f"dry run: built Dataflow job {name} ({transforms} transforms); nothing staged or submitted"
    if gc.template_location:
        return f"wrote Dataflow job {name} to {gc.template_location} (not submitted)"
    return f"submitted Dataflow job {result.job_id()} ({name}) in {gc.region}; not waiting for it"


def run_template(pipeline: str, argv: Sequence[str]) -> int:
    """Builds and runs a registered pipeline from launcher flags; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hybridflow.errors import HybridflowError, report
    from hybridflow.redaction import redact_logs

    redact_logs()  # the launcher's log lines never show a URI's password or token

    try:
        import apache_beam as beam

        from hybridflow.flex.package import stage_hybridflow
        from hybridflow.options import HybridflowOptions
        from hybridflow.pipelines import get_pipeline
        from hybridflow.pipelines.run import construct, run_pipeline
        from hybridflow.runners_config import load_profile

        spec = get_pipeline(pipeline)
        profile = load_profile("dataflow")
        options = spec.options(list(argv), profile.flags())
        if not is_dataflow(options):
            summary = run_pipeline(spec, options)
            print(summary.render())
            return 0 if summary.state.endswith("DONE") else 1
        profile.check_required(options)
        stage_hybridflow(options)  # nothing to do when the workers run the template image
        p = beam.Pipeline(options=options)
        construct(p, spec, options)
        result = p.run()  # on Dataflow: never wait_until_finish (the launcher must return)
        mode = options.view_as(HybridflowOptions).mode
        print(f"pipeline {spec.name} ({mode}): {_job_description(p.runner.job, result, options)}", flush=True)
        return 0
    except HybridflowError as exc:
        return report(exc)
