"""docs/dataflow.md: every example runs as written (offline)."""

import json

from hybridflow import get_pipeline
from hybridflow.flex.metadata import template_metadata
from hybridflow.flex.package import image_tag
from tests._docs import example, run_sh


def test_the_metadata_excerpt_is_what_template_build_writes():
    code = example("dataflow.md", "metadata-duration", "json")
    params = {p["name"]: p for p in template_metadata(get_pipeline("fraud"))["parameters"]}
    assert json.loads(code) == params["duration"]


def test_the_launch_example_runs_in_an_empty_directory(tmp_path):
    """build + launch --dry-run from any directory: no checkout files needed."""
    code = example("dataflow.md", "template-launch", "sh")
    result = run_sh(code, tmp_path, timeout=300)
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
