import pytest

from hybridflow import InvalidOptionError, UnknownProfileError, get_pipeline
from hybridflow.options import HybridflowOptions, resolve_options
from hybridflow.pipelines.fraud import FraudOptions
from hybridflow.runners_config import list_profiles, load_profile
from apache_beam.options.pipeline_options import FlinkRunnerOptions, StandardOptions


def test_profiles_ship_with_the_package():
    assert list_profiles() == ["dataflow", "dataproc", "direct", "flink", "prism", "spark"]
    flink = load_profile("flink")
    assert "--runner=FlinkRunner" in flink.flags()
    assert "--job_server_jvm_properties=--add-opens=java.base/java.lang=ALL-UNNAMED" in flink.flags()


@pytest.mark.parametrize("name", ["prism", "flink", "direct"])
def test_local_profiles_let_jobs_run_longer_than_five_minutes(name):
    # Beam's PortableRunner uses job_server_timeout (default 300 s) as the
    # deadline of the job's state stream: with the default, every Prism or
    # Flink job longer than 5 minutes failed with DEADLINE_EXCEEDED
    from apache_beam.options.pipeline_options import PortableOptions

    options = get_pipeline("fraud").options(["--mode=streaming"], load_profile(name).flags())
    assert options.view_as(PortableOptions).job_server_timeout >= 365 * 86400
    override = get_pipeline("fraud").options(["--job_server_timeout=60"], load_profile(name).flags())
    assert override.view_as(PortableOptions).job_server_timeout == 60


def test_command_line_overrides_profile_and_defaults_fill_the_rest():
    spec = get_pipeline("fraud")
    options = spec.options(["--parallelism=4", "--velocity_threshold=3", "--mode=streaming"],
                           load_profile("flink").flags())
    assert options.view_as(FlinkRunnerOptions).parallelism == 4
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    assert options.view_as(StandardOptions).streaming is True
    assert options.view_as(FraudOptions).velocity_threshold == 3
    hf = options.view_as(HybridflowOptions)
    assert hf.input.startswith("synthetic://transactions?rate=")
    assert hf.output == "output/fraud-streaming"


def test_streaming_flag_implies_streaming_mode():
    options = resolve_options(["--streaming"])
    assert options.view_as(HybridflowOptions).mode == "streaming"


def test_unknown_profile_and_missing_required():
    with pytest.raises(UnknownProfileError, match="direct, flink, prism"):
        load_profile("nosuch")
    dataflow = load_profile("dataflow")
    options = get_pipeline("fraud").options(["--project=p"], dataflow.flags())
    with pytest.raises(InvalidOptionError, match="--region, --temp_location"):
        dataflow.check_required(options)


def test_bad_profile_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("options: [1, 2]\n")
    with pytest.raises(InvalidOptionError, match="mapping"):
        load_profile(str(bad))


@pytest.mark.parametrize("flag, message", [
    ("--zscore_threshold=-inf", "--zscore_threshold=-inf: must be a finite number > 0"),
    ("--zscore_threshold=nan", "--zscore_threshold=nan: must be a finite number > 0"),
    ("--zscore_threshold=1e400", "--zscore_threshold=inf: must be a finite number > 0"),
    ("--zscore_threshold=0", "--zscore_threshold=0.0: must be a finite number > 0"),
    ("--usual_country_share=nan", "--usual_country_share=nan: must be in (0, 1]"),
])
def test_fraud_float_flags_must_be_finite_and_in_range(flag, message):
    with pytest.raises(InvalidOptionError) as caught:
        get_pipeline("fraud").options([flag])
    assert str(caught.value).startswith(message)


def test_every_float_flag_must_be_finite():
    """check_finite covers every type=float flag, whether or not a validate() checks it."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from hybridflow.options import check_finite

    check_finite(PipelineOptions(["--zscore_threshold=2.5", "--usual_country_share=0.2"]), FraudOptions)
    for value in ("inf", "-inf", "nan", "1e999"):
        with pytest.raises(InvalidOptionError, match="--usual_country_share=.*: use a finite number"):
            check_finite(PipelineOptions([f"--usual_country_share={value}"]), FraudOptions)


def test_timestamp_unit_reaches_the_parse_step():
    options = get_pipeline("fraud").options(["--timestamp_unit=ms"])
    assert options.view_as(HybridflowOptions).timestamp_unit == "ms"
    assert get_pipeline("fraud").options([]).view_as(HybridflowOptions).timestamp_unit == "s"


def test_flink_checkpoint_flags_are_accepted_and_a_local_restore_is_refused():
    """Beam Python does not declare Flink's checkpoint flags (the job server describes them at submission);
    hybridflow declares them so that `hybridflow run` accepts them, and refuses a --savepoint_path that
    Beam's Flink runner would ignore on the [local] mini-cluster (the flink profile)."""
    flink = load_profile("flink").flags()
    options = resolve_options([*flink, "--checkpointing_interval=10000", "--state_backend=filesystem",
                               "--retain_externalized_checkpoints_on_cancellation"])
    values = options.get_all_options()
    assert (values["checkpointing_interval"], values["state_backend"]) == (10000, "filesystem")
    assert values["retain_externalized_checkpoints_on_cancellation"] is True
    assert values["savepoint_path"] is None  # unset flags are not sent to the job server
    with pytest.raises(InvalidOptionError, match=r"^--savepoint_path=/sp: .* not with --flink_master=\[local\]; "
                                                 r"pass --flink_master=HOST:PORT$"):
        resolve_options([*flink, "--savepoint_path=/sp"])
    cluster = resolve_options([*flink, "--flink_master=jobmanager:8081", "--savepoint_path=/sp"])
    assert cluster.get_all_options()["savepoint_path"] == "/sp"
