"""Dataflow flex templates of hybridflow pipelines, generated and checked offline.

``hybridflow template build PIPELINE`` writes ``templates/PIPELINE/``:

- ``metadata.json`` from the pipeline's own options (:func:`template_metadata`);
- ``Dockerfile``: Beam's Python 3.11 SDK image + Google's launcher, the
  hashed lock and hybridflow's wheel: the launcher and the workers' image;
- ``requirements.txt``: the hashed lock (Beam from ``hybridflow/_pins.py``);
- ``main.py``, which only calls :func:`run_template`.

``hybridflow template launch PIPELINE --project P --region R --param k=v``
checks the parameters offline and runs the gcloud build / run commands
(:class:`FlexLaunch`), or prints them with ``--dry-run``.

Example::

    from hybridflow.flex import FlexLaunch
    launch = FlexLaunch("fraud", project="my-project", region="us-central1",
                        parameters={"output": "gs://my-bucket/fraud"})
    launch.check()            # offline: parameters and template files
    print(launch.commands())  # wheel, gcloud builds submit, storage cp of the spec, flex-template run
"""

from hybridflow._lazy import lazy_exports

# Imported on first use (PEP 562): the CLI adds its `template` command from
# hybridflow.flex.cli without importing Apache Beam.
_EXPORTS = {
    "run_template": "hybridflow.flex.entrypoint",
    "render_template": "hybridflow.flex.files",
    "TemplateFiles": "hybridflow.flex.files",
    "LAUNCHER_BASE_IMAGE": "hybridflow.flex.files",
    "SDK_BASE_IMAGE": "hybridflow.flex.files",
    "image_tag": "hybridflow.flex.package",
    "stage_hybridflow": "hybridflow.flex.package",
    "FlexLaunch": "hybridflow.flex.launch",
    "TemplateParameter": "hybridflow.flex.metadata",
    "template_parameters": "hybridflow.flex.metadata",
    "template_metadata": "hybridflow.flex.metadata",
    "check_parameters": "hybridflow.flex.metadata",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "run_template",
    "render_template",
    "TemplateFiles",
    "LAUNCHER_BASE_IMAGE",
    "SDK_BASE_IMAGE",
    "image_tag",
    "stage_hybridflow",
    "FlexLaunch",
    "TemplateParameter",
    "template_parameters",
    "template_metadata",
    "check_parameters",
]
