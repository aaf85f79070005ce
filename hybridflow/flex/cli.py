"""``hybridflow template build|launch``: the CLI side of flex templates.

::

    hybridflow template build PIPELINE [--out templates/PIPELINE] [--image BASE_IMAGE] [--check]
    hybridflow template launch PIPELINE --project P --region R [--param NAME=VALUE ...]
                               [--bucket gs://B] [--image IMAGE] [--job-name NAME]
                               [--templates DIR] [--skip-build] [--dry-run]
"""

from __future__ import annotations

__all__ = ["add_template_parser", "run_template_command"]


def add_template_parser(sub) -> None:
    """Adds the ``template`` command to the CLI's subparsers."""
    template = sub.add_parser("template", help="Build or launch a pipeline's Dataflow flex template.")
    actions = template.add_subparsers(dest="template_command", metavar="ACTION", parser_class=type(template))
    actions.required = True
    build = actions.add_parser("build", help="Write templates/PIPELINE: metadata.json, Dockerfile, requirements, main.py.")
    build.add_argument("pipeline")
    build.add_argument("--out", default=None, help="Output directory (default: templates/PIPELINE).")
    build.add_argument(
        "--image",
        default=None,
        help="Base image of the Dockerfile (default: Google's Python 3.11 flex-template launcher base).",
    )
    build.add_argument("--check", action="store_true", help="Write nothing; exit 1 if the files differ.")
    launch = actions.add_parser("launch", help="Build the image and template spec with gcloud, then run a job.")
    launch.add_argument("pipeline")
    launch.add_argument("--project", required=True, help="Google Cloud project id.")
    launch.add_argument("--region", required=True, help="Dataflow region, e.g. us-central1.")
    launch.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="A template parameter (repeat); see `hybridflow describe PIPELINE`.",
    )
    launch.add_argument("--bucket", default=None, help="gs://BUCKET for spec, temp and staging (default gs://PROJECT-hybridflow).")
    launch.add_argument("--image", default=None, help="Template image to build and run (default: Artifact Registry in REGION).")
    launch.add_argument("--job-name", default=None, help="Dataflow job name (default hybridflow-PIPELINE-UTCTIME).")
    launch.add_argument("--templates", default=None, help="Template directory (default templates/PIPELINE).")
    launch.add_argument("--skip-build", action="store_true", help="Only run a job from the already built spec.")
    launch.add_argument("--dry-run", action="store_true", help="Check offline and print the commands; run nothing.")


def run_template_command(args, out) -> int:
    if args.template_command == "build":
        return _build(args, out)
    return _launch(args, out)


def _build(args, out) -> int:
    from hybridflow.flex.files import LAUNCHER_BASE_IMAGE, render_template
    from hybridflow.pipelines import get_pipeline

    spec = get_pipeline(args.pipeline)
    files = render_template(spec, args.image or LAUNCHER_BASE_IMAGE)
    directory = args.out or f"templates/{spec.name}"
    if args.check:
        drift = files.drift(directory)
        for name in drift:
            print(f"{directory}/{name}: differs from `hybridflow template build {spec.name}`", file=out)
        return 1 if drift else 0
    for path in files.write(directory):
        print(f"wrote {path}", file=out)
    return 0


def _launch(args, out) -> int:
    from hybridflow.flex.launch import FlexLaunch, render_commands, run_commands
    from hybridflow.flex.metadata import parameter_flags

    launch = FlexLaunch(
        pipeline=args.pipeline,
        project=args.project,
        region=args.region,
        parameters=parameter_flags(args.param),
        bucket=args.bucket,
        image=args.image,
        job_name=args.job_name,
        template_dir=args.templates,
    )
    launch.check()
    commands = launch.commands(build=not args.skip_build)
    if not args.skip_build:
        print(f"wrote {launch.write_spec()}: the template spec to upload to {launch.spec_uri}", file=out)
    if args.dry_run:
        print(f"# offline checks passed; the commands of `hybridflow template launch {args.pipeline}`:", file=out)
        print(render_commands(commands), file=out)
        return 0
    run_commands(commands, out)
    return 0
