"""The committed templates/ match a fresh build (no drift), and each of the
four files says what the flex template launcher needs."""

import importlib.metadata
import re
import runpy
import subprocess

import pytest
from packaging.requirements import Requirement

import hybridflow
from hybridflow import list_pipelines
from hybridflow._pins import BEAM_VERSION
from hybridflow.flex.files import (
    LAUNCHER_BASE_IMAGE,
    PACKAGE_SDIST,
    PACKAGE_VERSION,
    PACKAGE_WHEEL,
    RUNTIME_PINS,
    TEMPLATE_FILES,
    render_template,
)
from tests.conftest import REPO

SPECS = list_pipelines()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_committed_template_matches_a_fresh_build(spec):
    directory = REPO / "templates" / spec.name
    drift = render_template(spec).drift(directory)
    assert not drift, f"{drift} in {directory} differ: run `hybridflow template build {spec.name}` and commit"


def test_no_template_without_a_pipeline():
    assert sorted(p.name for p in (REPO / "templates").iterdir() if p.is_dir()) == sorted(s.name for s in SPECS)


def test_cli_build_writes_the_four_files_and_check_finds_drift(hybridflow_cmd, tmp_path):
    out = tmp_path / "fraud"
    result = subprocess.run([*hybridflow_cmd, "template", "build", "fraud", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(TEMPLATE_FILES)
    for name in TEMPLATE_FILES:
        assert (out / name).read_text() == (REPO / "templates" / "fraud" / name).read_text(), name
    check = [*hybridflow_cmd, "template", "build", "fraud", "--out", str(out), "--check"]
    assert subprocess.run(check, capture_output=True, text=True, timeout=120).returncode == 0
    (out / "requirements.txt").write_text("apache-beam\n")
    result = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "requirements.txt: differs" in result.stdout


def test_dockerfile_is_on_the_launcher_base_and_names_main_py():
    text = render_template(_fraud()).files["Dockerfile"]
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == f"FROM {LAUNCHER_BASE_IMAGE}"
    assert LAUNCHER_BASE_IMAGE.endswith("/python311-template-launcher-base")
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", text, re.M))
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "${WORKDIR}/main.py"
    assert env["FLEX_TEMPLATE_PYTHON_EXTRA_PACKAGES"] == f"${{WORKDIR}}/dist/{PACKAGE_WHEEL}"
    assert "COPY requirements.txt main.py ./" in text and f"COPY dist/{PACKAGE_SDIST} ./dist/" in text
    assert "pip install --no-cache-dir -r requirements.txt" in text
    other = render_template(_fraud(), base_image="registry.example/launcher:1").files["Dockerfile"]
    assert "FROM registry.example/launcher:1\n" in other


def test_requirements_are_exact_pins_that_satisfy_setup_py():
    lines = [line for line in render_template(_fraud()).files["requirements.txt"].splitlines()
             if line and not line.startswith("#")]
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        pins[requirement.name.lower()] = (spec.version, requirement.extras)
    assert pins["apache-beam"] == (BEAM_VERSION, {"gcp"})
    for text in importlib.metadata.requires("hybridflow"):
        requirement = Requirement(text)
        if requirement.marker is not None:  # an extra
            continue
        version, _ = pins[requirement.name.lower()]
        assert requirement.specifier.contains(version), (text, version)


def test_pins_satisfy_the_pinned_beams_own_requirements():
    """The image installs Beam and these pins together: pip must be able to."""
    assert importlib.metadata.version("apache-beam") == BEAM_VERSION
    beam_requires = [Requirement(r) for r in importlib.metadata.requires("apache-beam")]
    for dist, version in RUNTIME_PINS.items():
        for requirement in beam_requires:
            if requirement.name.lower() == dist.lower() and (
                requirement.marker is None or requirement.marker.evaluate({"extra": "gcp"})
            ):
                assert requirement.specifier.contains(version), (dist, version, str(requirement))


def test_package_version_is_hybridflows():
    assert PACKAGE_VERSION == hybridflow.__version__ == importlib.metadata.version("hybridflow")


def test_main_py_only_calls_the_installed_package():
    path = REPO / "templates" / "fraud" / "main.py"
    code = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", '"""'))]
    assert "from hybridflow.flex import run_template" in code
    assert code[-1].strip() == 'sys.exit(run_template("fraud", sys.argv[1:]))'
    namespace = runpy.run_path(str(path), run_name="imported")  # no side effects on import
    assert namespace["run_template"] is hybridflow.flex.run_template


def _fraud():
    return next(s for s in SPECS if s.name == "fraud")
