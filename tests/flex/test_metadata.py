"""metadata.json of every registered pipeline, checked offline: the documented
fields and types, the same parameters as the pipeline's parser, regexes that
agree with the parser, and the real gcloud's reading of the file."""

import json
import re
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridflow import InvalidOptionError, SchemaError, list_pipelines
from hybridflow.flex.metadata import check_parameters, template_metadata, template_parameters
from hybridflow.options import HybridflowOptions, check_flags, duration_arg, parser_actions
from hybridflow.pipelines import PipelineSpec
from tests.conftest import REPO

TOP = {
    "name": str,
    "description": str,
    "streaming": bool,
    "supportsAtLeastOnce": bool,
    "supportsExactlyOnce": bool,
    "defaultStreamingMode": str,
    "parameters": list,
}
PARAMETER = {"name": str, "label": str, "helpText": str, "isOptional": bool, "regexes": list, "paramType": str,
             "defaultValue": str, "enumOptions": list, "parentName": str, "parentTriggerValues": list}
SCHEMA = json.loads((REPO / "tests" / "flex" / "metadata.schema.json").read_text())
# Values of each argparse type that both the regex and the parser reject.
INVALID = {int: ["abc", "1.5", "", "12a"], float: ["abc", "1.2.3", "", "1,5"], duration_arg: ["abc", "", "5 minutes", "-3s"]}
SPECS = [spec.name for spec in list_pipelines()]


@pytest.fixture(params=SPECS)
def spec(request):
    return next(s for s in list_pipelines() if s.name == request.param)


def committed(spec):
    return json.loads((REPO / "templates" / spec.name / "metadata.json").read_text())


def pipeline_actions(spec):
    actions = [a for a in parser_actions(HybridflowOptions) if a.dest in spec.common]
    return actions + (parser_actions(spec.options_class) if spec.options_class else [])


def test_metadata_has_the_documented_fields_and_types(spec):
    metadata = committed(spec)
    assert {"name", "description", "parameters"} <= set(metadata) <= set(TOP)
    for field, kind in TOP.items():
        if field in metadata:
            assert type(metadata[field]) is kind, field
    if metadata["streaming"]:
        assert metadata["supportsExactlyOnce"] or metadata["supportsAtLeastOnce"]
        mode = metadata["defaultStreamingMode"]
        assert mode in ("EXACTLY_ONCE", "AT_LEAST_ONCE")
        assert metadata["supportsExactlyOnce" if mode == "EXACTLY_ONCE" else "supportsAtLeastOnce"]
    names = [p["name"] for p in metadata["parameters"]]
    assert len(names) == len(set(names))
    for param in metadata["parameters"]:
        assert {"name", "label", "helpText", "isOptional"} <= set(param) <= set(PARAMETER), param
        for field, kind in PARAMETER.items():
            if field in param:
                assert type(param[field]) is kind, (param["name"], field)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", param["name"])
        assert param["label"] and param["helpText"].endswith(".")
        for regex in param.get("regexes", []):
            re.compile(regex)


def test_metadata_is_valid_against_the_documented_schema(spec):
    """Google's TemplateMetadata / ParameterMetadata fields (tests/flex/metadata.schema.json), plus what
    a schema cannot say: a parent names an earlier ENUM parameter and triggers on its values, a
    default is one of the options and passes the regexes."""
    import jsonschema

    for metadata in (committed(spec), template_metadata(spec)):
        jsonschema.validate(metadata, SCHEMA, format_checker=jsonschema.FormatChecker())
        seen = {}
        for param in metadata["parameters"]:
            if "parentName" in param:
                parent = seen[param["parentName"]]  # declared before its children
                assert parent["paramType"] == "ENUM"
                assert set(param["parentTriggerValues"]) <= {o["value"] for o in parent["enumOptions"]}
            if "defaultValue" in param:
                value = param["defaultValue"]
                assert all(re.search(r, value) for r in param.get("regexes", [])), (param["name"], value)
                if param["paramType"] == "ENUM":
                    assert value in {o["value"] for o in param["enumOptions"]}
            seen[param["name"]] = param


def test_the_schema_refuses_what_dataflow_would_not_read():
    import jsonschema

    good = template_metadata(next(s for s in list_pipelines() if s.name == "fraud"))
    for broken in (
        {**good, "paramters": []},  # a misspelt field
        {**good, "parameters": [{**good["parameters"][0], "paramType": "DROPDOWN"}]},
        {**good, "parameters": [{**good["parameters"][0], "enumOptions": []}]},
        {**good, "parameters": [{**good["parameters"][4], "parentName": "mode", "parentTriggerValues": None}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_fraud_metadata_says_what_the_pipeline_is():
    metadata = template_metadata(next(s for s in list_pipelines() if s.name == "fraud"))
    assert metadata["name"] == "hybridflow fraud"
    assert metadata["streaming"] is True  # the pipeline has a streaming mode
    # windowed counts change if a record is delivered twice: exactly-once only
    assert (metadata["supportsAtLeastOnce"], metadata["supportsExactlyOnce"]) == (False, True)
    assert metadata["defaultStreamingMode"] == "EXACTLY_ONCE"
    params = {p["name"]: p for p in metadata["parameters"]}
    assert params["mode"]["regexes"] == ["^(?:batch|streaming|hybrid)$"]
    assert params["output"]["isOptional"] is False  # the default is a local directory
    assert [n for n, p in params.items() if not p["isOptional"]] == ["output"]
    assert "Default: 5m." in params["allowed_lateness"]["helpText"]
    assert "Default: 10." in params["velocity_threshold"]["helpText"]
    # the console's widgets and defaults
    assert params["mode"]["paramType"] == "ENUM" and params["mode"]["defaultValue"] == "batch"
    assert [o["value"] for o in params["mode"]["enumOptions"]] == ["batch", "streaming", "hybrid"]
    assert (params["input"]["paramType"], params["output"]["paramType"]) == ("GCS_READ_FILE", "GCS_WRITE_FOLDER")
    assert "defaultValue" not in params["input"]  # batch and streaming defaults differ
    assert "defaultValue" not in params["output"]  # required: the default is a local directory
    assert (params["velocity_threshold"]["paramType"], params["velocity_threshold"]["defaultValue"]) == ("NUMBER", "10")
    assert params["print_alerts"]["paramType"] == "BOOLEAN" and "defaultValue" not in params["print_alerts"]
    assert params["window"]["paramType"] == "TEXT" and params["window"]["defaultValue"] == "sliding:5m/1m"
    # streaming-only parameters show only for mode=streaming; batch-only ones only for batch
    shown_for = {n: tuple(p.get("parentTriggerValues", ())) for n, p in params.items() if "parentName" in p}
    assert shown_for == {"duration": ("streaming",), "columnar": ("batch",), "early_count": ("streaming",),
                         "early_every": ("streaming",), "live": ("hybrid",), "boundary": ("hybrid",),
                         "seam_horizon": ("hybrid",)}
    assert all(p["parentName"] == "mode" for p in params.values() if "parentName" in p)


def test_every_pipeline_parameter_is_in_the_metadata_and_nothing_else(spec):
    names = [p["name"] for p in committed(spec)["parameters"]]
    assert names == [a.dest for a in pipeline_actions(spec)]


def test_every_metadata_parameter_is_accepted_by_the_pipelines_parser(spec):
    for param in committed(spec)["parameters"]:
        examples = _examples(param)
        assert examples, param["name"]
        for value in examples:
            check_flags([f"--{param['name']}={value}"], spec.options_class)


def _examples(param):
    """A few values that match every regex of ``param``."""
    candidates = ["1", "0", "+7", "-2", "2.5", ".5", "1e3", "90s", "10m", "500ms", "1.5h", "batch", "streaming",
                  "jsonl", "parquet", "csv", "avro", "gs://bucket/out", "s3://b/p", "data/x.jsonl", "auto", "never", "true",
                  "ms", "dry_run"]
    return [c for c in candidates if all(re.search(r, c) for r in param.get("regexes", []))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_value_matching_the_regexes_is_accepted_by_the_parser(data):
    """Property: Dataflow's regex check never lets through a value the pipeline's parser refuses."""
    params = [(s, p) for s in list_pipelines() for p in template_parameters(s) if p.regexes]
    spec, param = data.draw(st.sampled_from(params), label="parameter")
    value = data.draw(st.from_regex(param.regexes[0], fullmatch=True).filter(param.matches), label="value")
    check_flags([f"--{param.name}={value}"], spec.options_class)


def test_an_invalid_value_is_rejected_by_its_regex_and_by_the_parser(spec):
    checked = 0
    for action in pipeline_actions(spec):
        param = next(p for p in template_parameters(spec) if p.name == action.dest)
        invalid = ["sideways", "BATCH", ""] if action.choices else INVALID.get(action.type, [])
        for value in invalid:
            assert not param.matches(value), (param.name, value)
            with pytest.raises(InvalidOptionError):
                check_flags([f"--{param.name}={value}"], spec.options_class)
            checked += 1
    assert checked >= 3 * len([a for a in pipeline_actions(spec) if a.choices or a.type in INVALID])


def test_dataflow_job_options_pass_through_as_gcloud_does():
    fraud = next(s for s in list_pipelines() if s.name == "fraud")
    values = {"output": "gs://b/o", "max_num_workers": "10", "sdk_container_image": "registry.example/img:1",
              "service_account_email": "sa@p.iam.gserviceaccount.com", "subnetwork": "regions/r/subnetworks/s",
              "machine_type": "n2-standard-4", "experiments": "use_runner_v2", "staging_location": "gs://b/s"}
    assert check_parameters(fraud, values) == [f"--{k}={v}" for k, v in values.items()]
    for bad, message in [({"max_num_workers": "ten"}, "--max_num_workers"),
                         ({"project": "p2"}, "unknown template parameter 'project'"),
                         ({"use_public_ips": "false"}, "unknown template parameter 'use_public_ips'")]:
        with pytest.raises(InvalidOptionError, match=re.escape(message)):
            check_parameters(fraud, {"output": "gs://b/o", **bad})


def test_check_parameters_names_the_problem():
    fraud = next(s for s in list_pipelines() if s.name == "fraud")
    ok = {"output": "gs://b/out", "mode": "streaming", "duration": "10m", "velocity_threshold": "7"}
    assert check_parameters(fraud, ok) == [f"--{k}={v}" for k, v in ok.items()]
    cases = [
        ({"output": "gs://b/o", "velocity_thresold": "3"}, "did you mean velocity_threshold?"),
        ({"output": "gs://b/o", "velocity_threshold": "abc"}, "does not match"),
        ({"output": "out/local"}, "output='out/local' does not match"),
        ({"mode": "batch"}, "needs --param output=..."),
        ({"output": "gs://b/o", "velocity_threshold": "0"}, "--velocity_threshold=0: must be >= 1"),
        ({"output": "gs://b/o", "window": "weekly"}, "--window=weekly"),
    ]
    for values, message in cases:
        with pytest.raises(InvalidOptionError, match=re.escape(message)):
            check_parameters(fraud, values)


def test_a_flag_without_a_value_or_a_type_without_a_regex_cannot_be_a_template_parameter():
    from apache_beam.options.pipeline_options import PipelineOptions

    class SwitchOptions(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--hf_test_switch", action="store_true")

    class OddTypeOptions(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--hf_test_odd", type=complex)

    for options_class, message in ((SwitchOptions, "on/off flag"), (OddTypeOptions, "has type complex")):
        spec = PipelineSpec("probe", "d", build=None, sinks=None, options_class=options_class, common=())
        with pytest.raises(SchemaError, match=message):
            template_parameters(spec)


def test_gcloud_reads_the_metadata(spec, gcloud_env, tmp_path):
    """The real Google Cloud CLI parses and validates metadata.json into a
    template spec (--print-only: nothing leaves the machine)."""
    path = REPO / "templates" / spec.name / "metadata.json"
    result = subprocess.run(
        ["gcloud", "dataflow", "flex-template", "build", f"gs://hf-bucket/templates/{spec.name}.json",
         "--image=gcr.io/test-project/hybridflow:1", "--sdk-language=PYTHON", f"--metadata-file={path}",
         "--print-only"],
        env=gcloud_env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.split("\n", 1)[1])  # after gcloud's "|-" line
    metadata = committed(spec)
    assert printed["metadata"]["parameters"] == metadata["parameters"]
    assert printed["metadata"]["name"] == metadata["name"]
    assert printed["sdkInfo"] == {"language": "PYTHON"}


def test_gcloud_rejects_a_mistyped_metadata_file(gcloud_env, tmp_path):
    """The check above can fail: gcloud refuses a parameter whose isOptional is not a boolean."""
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps({"name": "x", "parameters": [{"name": "a", "label": "A", "helpText": "h.",
                                                              "isOptional": "yes"}]}))
    result = subprocess.run(
        ["gcloud", "dataflow", "flex-template", "build", "gs://hf-bucket/t.json", "--image=gcr.io/p/i:1",
         "--sdk-language=PYTHON", f"--metadata-file={bad}", "--print-only"],
        env=gcloud_env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
