"""`hybridflow template launch`: offline checks, the gcloud commands, and
their execution (with a recording stand-in for gcloud: nothing here may
reach Google)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridflow import InvalidOptionError, UsageError
from hybridflow.flex.launch import FlexLaunch, gcloud_parameters, job_name_for
from hybridflow.flex.package import WHEEL_NAME, image_tag
from tests.conftest import REPO, examples
from tests.flex.conftest import offline_env

TEMPLATE = REPO / "templates" / "fraud"


def run(cmd, *args, env=None, timeout=180):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def template_copy(tmp_path):
    """A copy of templates/fraud, so launches write their dist/ outside the repo."""
    directory = tmp_path / "fraud"
    shutil.copytree(TEMPLATE, directory, ignore=shutil.ignore_patterns("dist"))
    return directory


def test_commands_and_defaults(template_copy):
    launch = FlexLaunch("fraud", "my-project", "europe-west1", {"output": "gs://b/out", "mode": "streaming"},
                        template_dir=str(template_copy), job_name="fraud-1")
    launch.check()
    wheel, build, upload, job = launch.commands()
    # the wheel built from this checkout into the build context
    assert wheel[1:4] == ["-m", "pip", "wheel"] and wheel[-3:] == ["--wheel-dir", str(template_copy / "dist"), str(REPO)]
    image = f"europe-west1-docker.pkg.dev/my-project/hybridflow/fraud:{image_tag()}"
    assert re.fullmatch(r"0\.1\.0-[0-9a-f]{12}", image_tag())
    assert build == ["gcloud", "builds", "submit", str(template_copy), f"--tag={image}", "--project=my-project"]
    assert upload == ["gcloud", "storage", "cp", str(template_copy / "dist" / "fraud-spec.json"),
                      "gs://my-project-hybridflow/templates/fraud.json", "--project=my-project"]
    assert job == [
        "gcloud", "dataflow", "flex-template", "run", "fraud-1",
        "--template-file-gcs-location=gs://my-project-hybridflow/templates/fraud.json",
        "--region=europe-west1", "--project=my-project",
        "--temp-location=gs://my-project-hybridflow/tmp", "--staging-location=gs://my-project-hybridflow/staging",
        f"--parameters=output=gs://b/out,mode=streaming,sdk_container_image={image}",
    ]
    assert launch.commands(build=False) == [job]
    spec = json.loads(launch.write_spec().read_text())
    assert spec["image"] == image and spec["sdkInfo"] == {"language": "PYTHON"}
    assert spec["defaultEnvironment"] == {"sdkContainerImage": image}  # the workers run the same image
    assert spec["metadata"] == json.loads((TEMPLATE / "metadata.json").read_text())


def test_dataflow_job_options_become_gcloud_flags(template_copy):
    options = {"service_account_email": "sa@my-project.iam.gserviceaccount.com", "subnetwork": "regions/r/subnetworks/s",
               "disable_public_ips": True, "worker_machine_type": "n2-standard-4", "max_workers": 10,
               "staging_location": "gs://other/staging", "additional_experiments": ["a", "b"],
               "additional_user_labels": {"team": "fraud", "env": "prod"}}
    launch = FlexLaunch("fraud", "my-project", "us-central1", {"output": "gs://b/o", "max_num_workers": "5",
                        "sdk_container_image": "registry.example/img:1"}, template_dir=str(template_copy),
                        job_name="j", job_options=options)
    launch.check()
    assert launch.run_command()[8:] == [
        "--service-account-email=sa@my-project.iam.gserviceaccount.com", "--subnetwork=regions/r/subnetworks/s",
        "--disable-public-ips", "--worker-machine-type=n2-standard-4", "--max-workers=10",
        "--temp-location=gs://my-project-hybridflow/tmp", "--staging-location=gs://other/staging",
        "--additional-experiments=a,b", "--additional-user-labels=team=fraud,env=prod",
        "--parameters=output=gs://b/o,max_num_workers=5,sdk_container_image=registry.example/img:1",
    ]
    for bad, message in [({"max_workers": 0}, "--max-workers=0"), ({"temp_location": "/tmp"}, "gs://"),
                         ({"zone": "x"}, "unknown Dataflow job option 'zone'"),
                         ({"additional_user_labels": {"Team": "x"}}, "label keys")]:
        with pytest.raises(InvalidOptionError, match=re.escape(message)):
            FlexLaunch("fraud", "my-project", "us-central1", {}, job_options=bad)


def test_gcloud_parameters_escape_commas():
    assert gcloud_parameters({"a": "1", "b": "x"}) == "a=1,b=x"
    assert gcloud_parameters({"input": "gs://b/{x,y}.jsonl", "mode": "batch"}) == "^~^input=gs://b/{x,y}.jsonl~mode=batch"


def test_gcloud_parameters_encode_every_character():
    """The reproduction of issue 15: a comma and every delimiter tried first."""
    value = "card,~|;#@:!%+/-1"
    encoded = gcloud_parameters({"output": f"gs://b/{value}", "mode": "batch"})
    assert encoded == f"^\u00a1^output=gs://b/{value}\u00a1mode=batch"
    with pytest.raises(InvalidOptionError, match="template parameter input: a NUL byte"):
        gcloud_parameters({"input": "a\0b"})


_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
_VALUES = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


@settings(max_examples=examples(300))
@given(st.dictionaries(_NAMES, _VALUES, max_size=4))
def test_gcloud_parameters_is_total(values):
    """Any text (but a NUL, which no command line holds): one delimiter found in
    no item, so splitting on it gives the items back."""
    encoded = gcloud_parameters(values)
    if encoded.startswith("^"):
        delimiter, body = encoded[1:].split("^", 1)
        assert len(delimiter) == 1 and delimiter != "^"
        items = body.split(delimiter)
    else:
        items = encoded.split(",") if encoded else []
    assert [tuple(item.split("=", 1)) for item in items] == list(values.items())


@pytest.fixture(scope="module")
def gcloud_arg_dict():
    """gcloud's own parser of dict flags (``ArgDict``), in a subprocess that
    imports the installed Google Cloud SDK: one JSON line in, one out."""
    if shutil.which("gcloud") is None:
        from hybridflow.testing.services.pytest_plugin import unavailable

        unavailable("gcloud (the Google Cloud CLI) is not installed: this test parses with gcloud's own code")
    sdk = pathlib.Path(os.path.realpath(shutil.which("gcloud"))).parent.parent / "lib"
    server = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(sdk)!r}, {str(sdk / 'third_party')!r}]\n"
        "from googlecloudsdk.calliope import arg_parsers\n"
        "parse = arg_parsers.ArgDict()\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps(list(parse(json.loads(line)).items())), flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def parse(text):
        proc.stdin.write(json.dumps(text) + "\n")
        proc.stdin.flush()
        return [tuple(item) for item in json.loads(proc.stdout.readline())]

    yield parse
    proc.stdin.close()
    proc.wait(timeout=30)


@settings(max_examples=examples(200))
@given(values=st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4))
def test_gcloud_reads_back_every_value(gcloud_arg_dict, values):
    assert gcloud_arg_dict(gcloud_parameters(values)) == list(values.items())


def test_job_names_are_valid_dataflow_names():
    assert job_name_for("hybridflow", "Fraud", "velocity|card-1") == "hybridflow-fraud-velocity-card-1"
    assert job_name_for("1x") == "hf-1x"
    assert len(job_name_for("a" * 100)) == 63


def test_dry_run_prints_the_commands(hybridflow_cmd, template_copy):
    result = run(hybridflow_cmd, "template", "launch", "fraud", "--project", "my-project", "--region", "us-central1",
                 "--param", "output=gs://my-bucket/fraud", "--param", "mode=streaming", "--param", "duration=10m",
                 "--param", "max_num_workers=5", "--disable-public-ips", "--max-workers", "4", "--label", "team=fraud",
                 "--templates", str(template_copy), "--job-name", "fraud-dry", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"wrote {template_copy}/dist/fraud-spec.json: the template spec to upload to "
                        "gs://my-project-hybridflow/templates/fraud.json")
    assert lines[1].startswith("# offline checks passed")
    assert " -m pip wheel --quiet --no-deps --wheel-dir " in lines[2]
    image = f"us-central1-docker.pkg.dev/my-project/hybridflow/fraud:{image_tag()}"
    assert lines[3].startswith(f"gcloud builds submit {template_copy} --tag={image}")
    assert lines[4].startswith("gcloud storage cp")
    assert lines[5] == (
        "gcloud dataflow flex-template run fraud-dry "
        "--template-file-gcs-location=gs://my-project-hybridflow/templates/fraud.json --region=us-central1 "
        "--project=my-project --disable-public-ips --max-workers=4 --temp-location=gs://my-project-hybridflow/tmp "
        "--staging-location=gs://my-project-hybridflow/staging --additional-user-labels=team=fraud "
        "--parameters=output=gs://my-bucket/fraud,mode=streaming,duration=10m,max_num_workers=5,"
        f"sdk_container_image={image}"
    )
    assert not (template_copy / "dist" / WHEEL_NAME).exists()  # nothing ran


@pytest.mark.parametrize(
    "args, message",
    [
        (["--region", "us-central1"], "the following arguments are required: --project"),
        (["--project", "X", "--region", "us-central1"], "--project='X': not a Google Cloud project id"),
        (["--project", "my-project", "--region", "moon"], "--region='moon': not a Dataflow region"),
        (["--project", "my-project", "--region", "us-central1"], "needs --param output=..."),
        (["--project", "my-project", "--region", "us-central1", "--param", "output"], "write --param NAME=VALUE"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--param", "velocity_thresold=3"], "did you mean velocity_threshold?"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--param", "cooldown=soon"], "cooldown='soon' does not match"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--bucket", "my-bucket"], "--bucket='my-bucket': give gs://BUCKET"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--templates", "/nonexistent/fraud"], "metadata.json, Dockerfile, requirements.txt, main.py missing"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--param", "max_num_workers=many"], "--max_num_workers"),
        (["--project", "my-project", "--region", "us-central1", "--param", "output=gs://b/o",
          "--max-workers", "0"], "--max-workers: '0' is not a whole number >= 1"),
    ],
)
def test_launch_usage_errors_are_one_line_and_exit_2(hybridflow_cmd, args, message):
    result = run(hybridflow_cmd, "template", "launch", "fraud", *args, "--dry-run")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hybridflow: error: "), result.stderr
    assert message in result.stderr


def test_the_gcloud_flags_exist(gcloud_env, template_copy):
    """Every flag of every gcloud command is one the installed gcloud documents."""
    launch = FlexLaunch("fraud", "my-project", "us-central1", {"output": "gs://b/o"}, template_dir=str(template_copy),
                        job_options={"service_account_email": "sa@p.iam.gserviceaccount.com", "network": "n",
                                     "subnetwork": "s", "disable_public_ips": True, "worker_machine_type": "m",
                                     "num_workers": 1, "max_workers": 2, "additional_experiments": ["e"],
                                     "additional_user_labels": {"k": "v"}})
    groups = {"builds": 2, "storage": 2, "dataflow": 3}
    for command in launch.commands()[1:]:
        group = command[1:1 + groups[command[1]]]
        helptext = run(["gcloud", *group, "--help"], env=gcloud_env, timeout=120)
        assert helptext.returncode == 0, helptext.stderr
        text = re.sub(r"\x1b\[[0-9;]*m", "", helptext.stdout)
        flags = [part.split("=", 1)[0] for part in command if part.startswith("--")]
        assert flags
        for flag in flags:
            if flag != "--project":  # a gcloud-wide flag, not in each command's help
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?=[=\s\]])", text), (group, flag)


def _fake_gcloud(directory, fail_on=None):
    """A stand-in `gcloud` that records its arguments (and fails on one group)."""
    log = directory / "gcloud.log"
    script = directory / "gcloud"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        + (f'[ "$1" = "{fail_on}" ] && {{ echo "ERROR: (gcloud.{fail_on}) denied" >&2; exit 1; }}\n' if fail_on else "")
        + "exit 0\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


@pytest.mark.parametrize("fail_on", [None, "builds"])
def test_launch_runs_the_commands_in_order_and_stops_at_a_failure(hybridflow_cmd, template_copy, tmp_path, fail_on):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = _fake_gcloud(bin_dir, fail_on)
    # gcloud is a stand-in; the wheel is built for real (pip may reach the package index for the build backend)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = run(hybridflow_cmd, "template", "launch", "fraud", "--project", "my-project", "--region", "us-central1",
                 "--param", "output=gs://my-bucket/fraud", "--templates", str(template_copy), "--job-name", "j1",
                 env=env, timeout=300)
    assert (template_copy / "dist" / WHEEL_NAME).is_file()  # the wheel step ran for real
    calls = log.read_text().splitlines()
    if fail_on is None:
        assert result.returncode == 0, result.stderr
        assert [c.split()[:3] for c in calls] == [["builds", "submit", str(template_copy)],
                                                 ["storage", "cp", str(template_copy / "dist" / "fraud-spec.json")],
                                                 ["dataflow", "flex-template", "run"]]
    else:
        assert result.returncode == 1
        assert calls == [f"builds submit {template_copy} --tag=us-central1-docker.pkg.dev/my-project/hybridflow/"
                         f"fraud:{image_tag()} --project=my-project"]
        assert "hybridflow: error: ConnectorError: `gcloud builds submit" in result.stderr
        assert "failed with exit code 1" in result.stderr


def test_launch_without_gcloud_says_how_to_get_it(hybridflow_cmd, template_copy, tmp_path):
    env = offline_env(PATH=str(tmp_path))  # no gcloud anywhere
    result = subprocess.run(
        [sys.executable, "-m", "hybridflow", "template", "launch", "fraud", "--project", "my-project", "--region",
         "us-central1", "--param", "output=gs://b/o", "--templates", str(template_copy), "--skip-build"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 2
    assert "gcloud not found on PATH: install the Google Cloud CLI" in result.stderr


def test_a_template_built_on_another_base_image_is_not_drift(hybridflow_cmd, tmp_path):
    out = tmp_path / "fraud"
    built = run(hybridflow_cmd, "template", "build", "fraud", "--out", str(out), "--image", "registry.example/base:3")
    assert built.returncode == 0, built.stderr
    FlexLaunch("fraud", "my-project", "us-central1", {"output": "gs://b/o"}, template_dir=str(out)).check()
    (out / "main.py").write_text("print('edited')\n")
    with pytest.raises(UsageError, match="main.py missing or out of date"):
        FlexLaunch("fraud", "my-project", "us-central1", {"output": "gs://b/o"}, template_dir=str(out)).check()
