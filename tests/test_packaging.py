"""The distribution's metadata: licence, one version, the Beam range and its pin,
and every third-party import of the package declared in the extra it needs.

The import check is static (an import scan of every module, each import
mapped to the installed distribution that provides it), so it needs no venv
per extra; `make release-check` adds the runtime half: the wheel installed
with no extra imports every module that needs none.
"""

import ast
import functools
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import hybridflow
from hybridflow._pins import BEAM_VERSION
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# Modules that belong to extras as a whole (every import in them may come from these extras).
# Any other module's top-level imports must be base requirements. Imports inside functions may
# come from an extra the module names in a ``hybridflow.errors.require(module, feature, EXTRA)``
# call (that call is what tells a user without the extra to install it), or be guarded by
# ``except ImportError``.
MODULE_EXTRAS = {
    "hybridflow.testing.runners": ("test",),
    "hybridflow.testing.services.pytest_plugin": ("test",),
    "hybridflow.testing.services.bigquery": ("test", "gcp"),
    "hybridflow.testing.services.bigtable": ("test", "gcp"),
    "hybridflow.testing.services.gcs": ("test", "gcp"),
    "hybridflow.testing.services.pubsub": ("test", "gcp"),
    "hybridflow.testing.services.kafka": ("test", "kafka"),
    "hybridflow.testing.services.postgres": ("test", "postgres"),
    "hybridflow.testing.services.s3": ("test", "aws"),
}


def test_licence_is_apache_2_and_shipped():
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    metadata = importlib.metadata.metadata("hybridflow")
    assert metadata["License-Expression"] == "Apache-2.0"


def test_the_version_is_written_once():
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hybridflow.__version__"}
    assert importlib.metadata.version("hybridflow") == hybridflow.__version__
    literal = re.compile(re.escape(f'"{hybridflow.__version__}"'))
    written = [p for p in (REPO / "hybridflow").rglob("*.py") if literal.search(p.read_text())]
    assert written == [REPO / "hybridflow" / "__init__.py"]
    assert not (REPO / "setup.py").exists() and not (REPO / "setup.cfg").exists()


def test_classifiers_name_the_supported_pythons():
    pythons = [c.rsplit(" ", 1)[1] for c in PROJECT["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert pythons == ["3.11", "3.12", "3.13"]
    assert PROJECT["requires-python"] == ">=3.11"
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"]) and PROJECT["authors"]


def _beam_requirements():
    texts = PROJECT["dependencies"] + [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    return [Requirement(t) for t in texts if canonicalize_name(Requirement(t).name) == "apache-beam"]


def test_beam_is_a_range_the_same_everywhere_and_the_pin_lies_in_it():
    specifiers = {str(r.specifier) for r in _beam_requirements()}
    assert len(specifiers) == 1, specifiers
    (specifier,) = {r.specifier for r in _beam_requirements()}
    assert not any(s.operator == "==" for s in specifier), "the library must not pin one Beam release"
    assert Version(beam_range()[0]) == Version("2.70.0")
    assert specifier.contains(BEAM_VERSION)
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins == [f"apache-beam=={BEAM_VERSION}"]


def beam_range():
    """(lowest, highest-series) of the declared range: ``>=2.70.0,<2.79`` -> ("2.70.0", "2.78")."""
    (specifier,) = {r.specifier for r in _beam_requirements()}
    low = next(s.version for s in specifier if s.operator == ">=")
    high = Version(next(s.version for s in specifier if s.operator == "<"))
    return low, f"{high.major}.{high.minor - 1}"


# -- every import declared ------------------------------------------------------------------


def _declared(extras) -> set:
    """Distribution names declared for the base install plus ``extras`` (self-references followed)."""
    names, todo, seen = set(), [None, *extras], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "hybridflow":
                todo.extend(requirement.extras)
            else:
                names.add(canonicalize_name(requirement.name))
    return names


@functools.cache
def _file_owners() -> dict:
    owners = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            if file.suffix in (".py", ".so", ".pyi") or file.name == "__init__.py":
                owners[os.path.normpath(dist.locate_file(file))] = canonicalize_name(dist.metadata["Name"])
    return owners


def _distribution(module: str) -> str:
    """The installed distribution that provides ``module`` (namespace packages resolved);
    ``package.name`` where ``name`` is not a module is looked up as ``package``."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None and "." in module:
        parent = module.rpartition(".")[0]
        if importlib.util.find_spec(parent) is not None:
            return _distribution(parent)
    assert spec is not None, f"{module} is not installed in the test venv"
    paths = [spec.origin] if spec.origin not in (None, "namespace") else []
    paths += [str(pathlib.Path(p) / "__init__.py") for p in (spec.submodule_search_locations or [])]
    for path in paths:
        owner = _file_owners().get(os.path.normpath(path))
        if owner:
            return owner
    raise AssertionError(f"no installed distribution owns {module} ({paths})")


class _Imports(ast.NodeVisitor):
    """Third-party imports of one module, each with the extras it may come from."""

    def __init__(self, module_extras):
        self.found = []  # (line, module, extras or None for base, optional)
        self._scopes = [set(module_extras)]
        self._optional = 0
        self._lazy = set(module_extras)  # the extras of the module's require() calls, for function bodies

    def visit_Module(self, node):
        for inner in ast.walk(node):
            if (isinstance(inner, ast.Call) and getattr(inner.func, "id", None) == "require"
                    and len(inner.args) == 3 and isinstance(inner.args[2], ast.Constant)):
                self._lazy.add(inner.args[2].value)
                self.found.append((inner.lineno, inner.args[0].value, (inner.args[2].value,), False))
        self.generic_visit(node)

    def _function(self, node):
        self._scopes.append(self._scopes[-1] | self._lazy)
        self.generic_visit(node)
        self._scopes.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Try(self, node):
        guarded = any(isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                      for h in node.handlers)
        self._optional += guarded
        for child in node.body:
            self.visit(child)
        self._optional -= guarded
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)

    def _add(self, line, module):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in ("hybridflow", "__future__"):
            return
        self.found.append((line, module, tuple(sorted(self._scopes[-1])) or None, bool(self._optional)))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(node.lineno, alias.name)

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module:
            for alias in node.names:  # `from google.cloud import storage`: the submodule, where it is one
                self._add(node.lineno, f"{node.module}.{alias.name}")


def _package_modules():
    for path in sorted((REPO / "hybridflow").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        yield name, path


def test_every_third_party_import_is_declared_in_the_extra_that_needs_it():
    problems, checked = [], 0
    for name, path in _package_modules():
        scan = _Imports(MODULE_EXTRAS.get(name, ()))
        scan.visit(ast.parse(path.read_text(), str(path)))
        for line, module, extras, optional in scan.found:
            dist = _distribution(module)
            allowed = _declared(extras or ()) if not optional else _declared(PROJECT["optional-dependencies"])
            checked += 1
            if dist not in allowed:
                where = f"extra {'/'.join(extras)}" if extras else ("an extra" if optional else "[project.dependencies]")
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module} ({dist}): declare {dist} in {where}")
    assert not problems, "\n".join(problems)
    assert checked > 50


def test_the_scan_finds_an_undeclared_import(tmp_path, monkeypatch):
    """The check above can fail: an import of a distribution declared nowhere, or only in another extra."""
    scan = _Imports(())
    scan.visit(ast.parse("import numpy\ndef f():\n    require('kafka', 'x', 'kafka')\ndef g():\n    import matplotlib\n"))
    found = {module: extras for _, module, extras, _ in scan.found}
    assert found == {"numpy": None, "kafka": ("kafka",), "matplotlib": ("kafka",)}
    assert _distribution("matplotlib") not in _declared(("kafka",))
    assert _distribution("urllib3") in _declared(())
    assert _distribution("google.cloud.storage") == "google-cloud-storage"  # a namespace package resolved


@pytest.mark.parametrize("extra", sorted(PROJECT["optional-dependencies"]))
def test_every_extra_is_installed_in_the_test_venv(extra):
    """The scan maps imports to the distributions installed here: every declared one must be."""
    for text in PROJECT["optional-dependencies"][extra]:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) != "hybridflow":
            assert importlib.metadata.version(requirement.name), text
