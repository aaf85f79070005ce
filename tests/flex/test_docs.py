"""docs/dataflow.md: every example runs as written (offline)."""

import json
import os
import subprocess
import sys

from hybridflow import get_pipeline
from hybridflow.flex.metadata import template_metadata
from hybridflow.flex.package import image_tag
from tests.doc_examples import examples

EXAMPLES = examples("dataflow.md")


def test_every_example_is_tested():
    assert set(EXAMPLES) == {"metadata-duration", "template-launch"}


def test_the_metadata_excerpt_is_what_template_build_writes():
    lang, code = EXAMPLES["metadata-duration"]
    params = {p["name"]: p for p in template_metadata(get_pipeline("fraud"))["parameters"]}
    assert lang == "json" and json.loads(code) == params["duration"]


def test_the_launch_example_runs_in_an_empty_directory(tmp_path):
    """build + launch --dry-run from any directory: no checkout files needed."""
    lang, code = EXAMPLES["template-launch"]
    assert lang == "sh"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = result.stdout.strip().splitlines()[-1]
    image = f"us-central1-docker.pkg.dev/my-project/hybridflow/fraud:{image_tag()}"
    assert run.startswith("gcloud dataflow flex-template run hybridflow-fraud-")
    for flag in ("--disable-public-ips", "--subnetwork=regions/us-central1/subnetworks/private",
                 "--service-account-email=fraud-jobs@my-project.iam.gserviceaccount.com",
                 "--additional-user-labels=team=fraud"):
        assert f" {flag} " in run, flag
    assert run.endswith("--parameters=mode=streaming,output=gs://my-project-hybridflow/fraud,duration=1h,"
                        f"max_num_workers=5,sdk_container_image={image}")
    assert (tmp_path / "templates" / "fraud" / "dist" / "fraud-spec.json").is_file()
