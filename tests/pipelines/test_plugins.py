"""Plug-in pipelines: a pipeline from its own package (``hybridflow new``), installed,
goes through every command as the built-in ones do; one that is not installed is
loaded from ``module:attr`` or a file.

"Installed" here: ``pip install --no-deps --target SITE`` of the scaffolded package
(a wheel built from its pyproject.toml, with its entry point in the dist-info), and
SITE on the commands' PYTHONPATH: the entry point is found as in any environment,
and the test venv itself is left as it was.
"""

import json
import os
import subprocess
import sys

import pytest

from hybridflow.errors import UnknownPipelineError, UsageError
from hybridflow.pipelines import get_pipeline
from hybridflow.pipelines.scaffold import scaffold_files, write_scaffold
from tests._docs import example

NAME = "demo_pipe"


def _cli(*args, cwd, pythonpath, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run([sys.executable, "-m", "hybridflow", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``hybridflow new demo_pipe``, then the package installed into SITE: (workdir, package dir, SITE)."""
    work = tmp_path_factory.mktemp("plugins")
    done = _cli("new", NAME, cwd=work, pythonpath=[])
    assert done.returncode == 0, done.stderr
    site = work / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(work / NAME)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    return work, work / NAME, site


def test_scaffold_is_a_valid_package():
    files = scaffold_files("my_pipe")
    declared = example("pipelines.md", "entry-point", "toml").replace("demo_pipe", "my_pipe")
    assert declared in files["pyproject.toml"]  # docs/pipelines.md's entry point, as the scaffold writes it
    assert {"my_pipe/records.py", "my_pipe/generator.py", "my_pipe/pipeline.py", "tests/test_my_pipe.py"} <= set(files)
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")


@pytest.mark.parametrize("name", ["Bad", "1x", "class", "a-b"])
def test_new_refuses_a_name_that_is_not_a_package_name(name, tmp_path):
    # a UsageError: the CLI says it in one line and exits 2 (tests/test_cli.py checks that for every usage error)
    with pytest.raises(UsageError, match="lower-case Python identifier"):
        write_scaffold(name, str(tmp_path / "pkg"))
    assert not (tmp_path / "pkg").exists()


@pytest.mark.slow
def test_the_scaffold_passes_its_own_tests(installed):
    """`hybridflow new demo_pipe && cd demo_pipe && pytest`: generator, batch/stream parity, a whole run."""
    _, package, site = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
                          cwd=package, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "3 passed" in done.stdout


@pytest.mark.slow
def test_an_installed_pipeline_goes_through_every_command(installed):
    work, _, site = installed
    path = [site]

    done = _cli("list", cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert "fraud" in names and NAME in names

    done = _cli("describe", NAME, cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr
    assert f"from: entry point {NAME} of {NAME} 0.0.1" in done.stdout
    assert "--history" in done.stdout and "--zscore_threshold" in done.stdout
    assert f"generators: synthetic://{NAME}-events" in done.stdout

    done = _cli("generate", NAME, "--count", "200", "--shards", "1", "--out", "data", cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (work / "data").iterdir()) == [
        f"{NAME}-events-00000-of-00001.jsonl", "history-00000-of-00001.jsonl"]
    history = (work / "data" / "history-00000-of-00001.jsonl").read_text().splitlines()
    assert len(history) == 200 and all(json.loads(line) for line in history[:5])

    done = _cli("run", NAME, f"--input=data/{NAME}-events-*.jsonl", "--history=data/history-*.jsonl",
                "--output=out", "--runner=FnApiRunner", cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"pipeline {NAME} (batch)" in done.stdout and "DONE" in done.stdout
    assert list((work / "out").glob("alerts-*.jsonl")) and list((work / "out").glob("baselines-*.parquet"))

    done = _cli("report", NAME, "--input", "out", "--out", "report.html", cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{NAME} report" in (work / "report.html").read_text()

    done = _cli("template", "build", NAME, cwd=work, pythonpath=path)
    assert done.returncode == 0, done.stderr[-3000:]
    built = work / "templates" / NAME
    assert (built / "metadata.json").is_file()
    metadata = json.loads((built / "metadata.json").read_text())
    assert {"history", "zscore_threshold"} <= {p["name"] for p in metadata["parameters"]}


@pytest.mark.slow
def test_a_pipeline_that_is_not_installed_loads_from_module_or_file(installed, tmp_path):
    _, package, _ = installed
    done = _cli("--pipeline", f"{NAME}.pipeline:SPEC", "describe", NAME, cwd=tmp_path, pythonpath=[package])
    assert done.returncode == 0, done.stderr
    assert f"from: module {NAME}.pipeline:SPEC" in done.stdout

    (tmp_path / "my_fraud.py").write_text(example("pipelines.md", "file-pipeline", "python"))
    done = _cli("run", "./my_fraud.py", "--input=synthetic://transactions?count=200&seed=3", "--output=out",
                "--runner=FnApiRunner", cwd=tmp_path, pythonpath=[])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pipeline my_fraud (batch)" in done.stdout and "records read     200" in done.stdout

    done = _cli("template", "build", "./my_fraud.py", cwd=tmp_path, pythonpath=[])
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "which no installed distribution provides" in done.stderr

    with pytest.raises(UnknownPipelineError, match="no such file"):  # a usage error: one line, exit 2
        get_pipeline(str(tmp_path / "nothing.py"))
