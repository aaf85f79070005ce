"""The committed templates/ match a fresh build (no drift), and each of the
four files says what the flex template launcher needs."""

import importlib.metadata
import re
import runpy
import subprocess

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hybridflow
from hybridflow import list_pipelines
from hybridflow._pins import BEAM_VERSION
from hybridflow.flex.files import LAUNCHER_BASE_IMAGE, SDK_BASE_IMAGE, TEMPLATE_FILES, render_template
from hybridflow.flex.package import LOCK_PATH, WHEEL_NAME
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


def test_dockerfile_is_one_image_for_the_launcher_and_the_workers():
    """Google's pattern: Beam's SDK image + the launcher binary; hashed lock; the wheel; no downloads later."""
    text = render_template(_fraud()).files["Dockerfile"]
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == f"FROM {SDK_BASE_IMAGE}" == f"FROM apache/beam_python3.11_sdk:{BEAM_VERSION}"
    launcher = "/opt/google/dataflow/python_template_launcher"
    assert f"COPY --from={LAUNCHER_BASE_IMAGE} {launcher} {launcher}" in instructions
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", text, re.M))
    assert env == {"FLEX_TEMPLATE_PYTHON_PY_FILE": "${WORKDIR}/main.py", "PIP_NO_DEPS": "True"}
    assert "FLEX_TEMPLATE_PYTHON_EXTRA_PACKAGES" not in text and "FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE" not in text
    assert "COPY requirements.txt main.py ./" in text and f"COPY dist/{WHEEL_NAME} ./dist/" in text
    assert "pip install --no-cache-dir --require-hashes -r requirements.txt" in text
    assert f"pip install --no-cache-dir --no-deps dist/{WHEEL_NAME}" in text
    assert instructions[-1] == 'ENTRYPOINT ["/opt/apache/beam/boot"]'
    assert "already" not in text  # no claim that workers have the requirements from elsewhere
    other = render_template(_fraud(), base_image="registry.example/beam:1").files["Dockerfile"]
    assert "FROM registry.example/beam:1\n" in other


def lock_pins(text):
    """{name: version} of a pip-compile lock; fails unless every requirement is pinned with == and hashed."""
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        first = block.split("\\")[0].strip()
        requirement = Requirement(first)
        (spec,) = requirement.specifier
        assert spec.operator == "==", first
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"{first} has no hash"
        pins[canonicalize_name(requirement.name)] = spec.version
    assert pins
    return pins


def test_requirements_are_the_hashed_lock_and_cover_every_runtime_requirement():
    text = render_template(_fraud()).files["requirements.txt"]
    assert text.endswith(LOCK_PATH.read_text())
    pins = lock_pins(LOCK_PATH.read_text())
    assert pins["apache-beam"] == BEAM_VERSION
    # nothing of the machine that made it: no local wheel directory, index or host
    assert not re.search(r"^-", LOCK_PATH.read_text(), re.M)
    declared = [Requirement(r) for r in importlib.metadata.requires("hybridflow")]
    runtime = [r for r in declared if r.marker is None or r.marker.evaluate({"extra": "gcp"})]
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), (str(requirement), pins[name])


def test_the_lock_pins_the_beam_the_tests_ran_with():
    """The image's Beam is the test venv's (constraints.txt); the other pins only need to satisfy the
    declared ranges (above): a fresh venv may resolve newer releases than the lock."""
    assert lock_pins(LOCK_PATH.read_text())["apache-beam"] == importlib.metadata.version("apache-beam")


def test_main_py_only_calls_the_installed_package():
    path = REPO / "templates" / "fraud" / "main.py"
    code = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", '"""'))]
    assert "from hybridflow.flex import run_template" in code
    assert code[-1].strip() == 'sys.exit(run_template("fraud", sys.argv[1:]))'
    namespace = runpy.run_path(str(path), run_name="imported")  # no side effects on import
    assert namespace["run_template"] is hybridflow.flex.run_template


def _fraud():
    return next(s for s in SPECS if s.name == "fraud")
