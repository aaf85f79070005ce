"""The CLI side of orchestration: ``airflow-dag``, ``k8s`` and ``cron-line``.

::

    hybridflow airflow-dag PIPELINE [--schedule @daily] [--runner direct|prism|flink|spark|dataflow]
                           [--flex-template [--bucket gs://B]] [--out FILE] [--dag-id ID]
                           [--python PATH] [--poke-interval S] [--sensor-timeout S]
                           [pipeline and Beam flags]
    hybridflow k8s PIPELINE [--profile flink] [--out DIR] [--image IMAGE] [--namespace NS]
                   [--parallelism N] [--checkpoint-dir URI] [--checkpoint-interval S] [--check]
                   [pipeline and Beam flags]
    hybridflow cron-line PIPELINE [--schedule '0 2 * * *'] [--profile direct] [--timeout DURATION]
                         [--log FILE] [--workdir DIR] [pipeline and Beam flags]

Flags these commands do not know (``--input=...``, ``--output=...``,
``--deadline=2h``, ``--project=...``) are the run's, checked against the
pipeline's parser as ``hybridflow run`` checks them.
"""

from __future__ import annotations

__all__ = ["add_parsers", "COMMANDS", "run_command"]

COMMANDS = ("airflow-dag", "k8s", "cron-line")


def add_parsers(sub) -> None:
    """Adds ``airflow-dag``, ``k8s`` and ``cron-line`` to the CLI's subparsers."""
    dag = sub.add_parser("airflow-dag", help="Write an Airflow / Cloud Composer DAG file for a batch run.",
                         allow_abbrev=False)
    dag.add_argument("pipeline")
    dag.add_argument("--schedule", default="@daily", help="Cron expression or preset (default @daily).")
    dag.add_argument("--runner", default="direct",
                     help="Runner profile of the run: direct, prism, flink, spark, dataflow or a YAML path (default direct).")
    dag.add_argument("--flex-template", action="store_true",
                     help="Launch the pipeline's built Dataflow flex template (needs --runner=dataflow).")
    dag.add_argument("--bucket", default=None, help="The flex template's gs:// bucket (default gs://PROJECT-hybridflow).")
    dag.add_argument("--out", default=None, help="DAG file to write (default: print it).")
    dag.add_argument("--dag-id", default=None, help="DAG id (default hybridflow_PIPELINE, hybridflow_PIPELINE_flex with --flex-template).")
    dag.add_argument("--python", default=None, help="Python with hybridflow installed (default: this one).")
    dag.add_argument("--poke-interval", type=int, default=60, help="Seconds between the success-marker checks.")
    dag.add_argument("--sensor-timeout", type=int, default=None,
                     help="Seconds the success-marker sensor waits (default: twice --deadline, else a day).")

    k8s = sub.add_parser("k8s", help="Write Kubernetes manifests: Flink operator streaming job, batch Job.",
                         allow_abbrev=False)
    k8s.add_argument("pipeline")
    k8s.add_argument("--profile", default="flink", help="Runner profile of the runs (default flink).")
    k8s.add_argument("--out", default=None, help="Directory to write (default k8s/PIPELINE).")
    k8s.add_argument("--image", default=None, help="The image the pods run (built from the written Dockerfile).")
    k8s.add_argument("--namespace", default="default")
    k8s.add_argument("--parallelism", type=int, default=2, help="Flink parallelism of the streaming job (default 2).")
    k8s.add_argument("--checkpoint-dir", default=None,
                     help="Checkpoint storage: s3://, gs:// or file:///flink-data/... (default, on a volume claim).")
    k8s.add_argument("--checkpoint-interval", type=int, default=60, help="Seconds between checkpoints (default 60).")
    k8s.add_argument("--check", action="store_true",
                     help="Validate against the operator's CRD and Kubernetes' schemas (make tools; the k8s extra).")

    cron = sub.add_parser("cron-line", help="Print the crontab line of a scheduled batch run.", allow_abbrev=False)
    cron.add_argument("pipeline")
    cron.add_argument("--schedule", default="@daily", help="Cron expression or preset (default @daily).")
    cron.add_argument("--profile", default="direct", help="Runner profile (default direct).")
    cron.add_argument("--timeout", default=None, help="Stop the run after this long (default: twice --deadline).")
    cron.add_argument("--log", default=None, help="File the run's output is appended to.")
    cron.add_argument("--workdir", default=None, help="Directory the run starts in (default: this one).")


def run_command(args, flags, out) -> int:
    from hybridflow.orchestration import ScheduledRun

    if args.command == "airflow-dag":
        import sys

        from hybridflow.orchestration.airflow import AirflowDag

        dag = AirflowDag(
            ScheduledRun(args.pipeline, args.runner, flags), schedule=args.schedule, dag_id=args.dag_id,
            python=args.python or sys.executable, flex_template=args.flex_template, bucket=args.bucket,
            poke_interval=args.poke_interval, sensor_timeout=args.sensor_timeout,
        )
        text = dag.render()
        if args.out is None:
            print(text, file=out, end="")
        else:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {args.out} (DAG {dag.id})", file=out)
        return 0
    if args.command == "k8s":
        import yaml

        from hybridflow.orchestration.k8s import K8sManifests, validate

        extra = {} if args.checkpoint_dir is None else {"checkpoint_dir": args.checkpoint_dir}
        manifests = K8sManifests(
            args.pipeline, args.profile, flags, image=args.image, namespace=args.namespace,
            parallelism=args.parallelism, checkpoint_interval=args.checkpoint_interval, **extra,
        )
        files = manifests.files()
        if args.check:
            validate([yaml.safe_load(text) for name, text in files.items() if name.endswith(".yaml")])
        for path in manifests.write(args.out or f"k8s/{args.pipeline}"):
            print(f"wrote {path}", file=out)
        if args.check:
            print("manifests valid (Flink Kubernetes Operator CRD, Kubernetes schemas)", file=out)
        return 0
    from hybridflow.durations import parse_duration
    from hybridflow.errors import InvalidOptionError
    from hybridflow.orchestration.cron import cron_line

    try:
        timeout = None if args.timeout is None else parse_duration(args.timeout)
    except ValueError as exc:
        raise InvalidOptionError(f"--timeout={args.timeout}: {exc}") from None
    run = ScheduledRun(args.pipeline, args.profile, flags, relative_to=args.workdir or ".")
    print(cron_line(run, args.schedule, timeout=timeout, log=args.log,
                    workdir=args.workdir), file=out)
    return 0
