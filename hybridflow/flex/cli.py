"""``hybridflow template build|launch``: the CLI side of flex templates.

::

    hybridflow template build PIPELINE [--out templates/PIPELINE] [--image BASE_IMAGE] [--check]
    hybridflow template launch PIPELINE --project P --region R [--param NAME=VALUE ...]
                               [--bucket gs://B] [--image IMAGE] [--job-name NAME]
                               [--templates DIR] [--skip-build] [--dry-run]
                               [Dataflow job options: --service-account-email, --network,
                                --subnetwork, --disable-public-ips, --worker-machine-type,
                                --num-workers, --max-workers, --temp-location, --staging-location,
                                --additional-experiments, --label KEY=VALUE]

``--param`` takes the pipeline's template parameters and Beam's Dataflow job
options (``--param max_num_workers=10``, ``--param sdk_container_image=IMAGE``),
as ``gcloud dataflow flex-template run --parameters`` does.
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
        help="Base image of the Dockerfile (default: Beam's Python 3.11 SDK image of the pinned Beam).",
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
    job = launch.add_argument_group("Dataflow job options (the flags of `gcloud dataflow flex-template run`)")
    job.add_argument("--service-account-email", default=None, help="Worker service account.")
    job.add_argument("--network", default=None, help="VPC network of the workers.")
    job.add_argument("--subnetwork", default=None, help="Subnetwork of the workers (regions/R/subnetworks/S or a URL).")
    job.add_argument("--disable-public-ips", action="store_true", help="Workers get no public IP address.")
    job.add_argument("--worker-machine-type", default=None, help="Worker machine type, e.g. n2-standard-4.")
    job.add_argument("--num-workers", type=_positive_int, default=None, help="Initial number of workers.")
    job.add_argument("--max-workers", type=_positive_int, default=None, help="Most workers autoscaling may use.")
    job.add_argument("--temp-location", default=None, help="gs:// temp location (default BUCKET/tmp).")
    job.add_argument("--staging-location", default=None, help="gs:// staging location (default BUCKET/staging).")
    job.add_argument("--additional-experiments", action="append", default=[], metavar="EXPERIMENT[,...]",
                     help="Dataflow experiments (repeat or comma-separate).")
    job.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="A job label (repeat).")


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def job_options(args) -> dict:
    """The Dataflow job options of ``template launch``'s flags (FlexLaunch.job_options)."""
    from hybridflow.flex.metadata import parameter_flags

    experiments = [e for text in args.additional_experiments for e in text.split(",") if e]
    options = {
        "service_account_email": args.service_account_email,
        "network": args.network,
        "subnetwork": args.subnetwork,
        "disable_public_ips": args.disable_public_ips or None,
        "worker_machine_type": args.worker_machine_type,
        "num_workers": args.num_workers,
        "max_workers": args.max_workers,
        "temp_location": args.temp_location,
        "staging_location": args.staging_location,
        "additional_experiments": experiments or None,
        "additional_user_labels": parameter_flags(args.label, what="--label") or None,
    }
    return {name: value for name, value in options.items() if value is not None}


def run_template_command(args, out) -> int:
    if args.template_command == "build":
        return _build(args, out)
    return _launch(args, out)


def _build(args, out) -> int:
    from hybridflow.flex.files import SDK_BASE_IMAGE, render_template
    from hybridflow.pipelines import get_pipeline

    spec = get_pipeline(args.pipeline)
    files = render_template(spec, args.image or SDK_BASE_IMAGE)
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
        job_options=job_options(args),
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
