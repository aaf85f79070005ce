"""hybridflow itself on Dataflow: its wheel, the hashed lock of its requirements,
the content tag of the template image, and staging for ``--profile dataflow``.

Workers get their dependencies the way Google recommends for them: one custom
SDK container image (Beam's SDK image + the hashed lock + hybridflow's wheel)
that is both the flex-template launcher and the workers' ``sdk_container_image``.
Nothing is installed when a worker starts: workers need no package index.

- :data:`LOCK_PATH`: every runtime requirement (and Beam's gcp extra) at one
  version with its hashes, made by ``make lock`` (pip-compile
  ``--generate-hashes``), shipped in the wheel; the image installs it with
  ``pip install --require-hashes``.
- :func:`image_tag`: ``VERSION-DIGEST``, the digest of the lock and of the
  package's files (and of the pipeline's own package, for a pipeline
  installed from another distribution): a new tag whenever any changes, the
  same tag (and no rebuild) when none does.
- :func:`wheel_command`: how the image's wheel is made: ``pip wheel`` of the
  source checkout, or, for an installed release, ``pip download`` of the same
  release; the same for a plug-in pipeline's distribution
  (:class:`PipelineWheel`).
- :func:`stage_hybridflow`: ``hybridflow run --profile dataflow`` without
  ``--sdk_container_image`` stages a wheel of hybridflow as an extra package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import urllib.parse
from typing import Optional

from hybridflow import __version__
from hybridflow.errors import ConnectorError

__all__ = [
    "LOCK_PATH",
    "WHEEL_NAME",
    "PipelineWheel",
    "pipeline_wheel",
    "source_root",
    "content_digest",
    "image_tag",
    "wheel_command",
    "build_wheel",
    "stage_hybridflow",
]

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent
#: The hashed requirements lock of the template image (``make lock``), package data.
LOCK_PATH = PACKAGE_DIR / "flex" / "requirements.lock"
#: The file name of hybridflow's wheel (pure Python).
WHEEL_NAME = f"hybridflow-{__version__}-py3-none-any.whl"


def source_root() -> Optional[pathlib.Path]:
    """The source checkout hybridflow runs from (``pip install -e .``), or None
    when it runs from an installed wheel."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def _files_under(root: pathlib.Path):
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            yield path


def _package_files():
    yield from _files_under(PACKAGE_DIR)


@dataclasses.dataclass(frozen=True)
class PipelineWheel:
    """The wheel of a plug-in pipeline's distribution, for the template image.

    Attributes:
      distribution: its name (``demo_pipe``); version: its version.
      source: the local directory it was installed from (PEP 610
        ``direct_url.json``: ``pip install [-e] DIR``), or None when it came
        from a package index.
    """

    distribution: str
    version: str
    source: Optional[pathlib.Path] = None

    @property
    def filename(self) -> str:
        name = re.sub(r"[-_.]+", "_", self.distribution).lower()
        return f"{name}-{self.version}-py3-none-any.whl"

    def command(self, dist_dir) -> list[str]:
        """``pip wheel`` of the source directory, or ``pip download`` of the release."""
        dist_dir = str(pathlib.Path(dist_dir).resolve())
        if self.source is not None:
            return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", dist_dir, str(self.source)]
        return [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                "--dest", dist_dir, f"{self.distribution}=={self.version}"]

    def files(self):
        """The files of its top-level packages and modules, wherever they are imported from."""
        import importlib.metadata
        import importlib.util

        tops = sorted(top for top, names in importlib.metadata.packages_distributions().items()
                      if self.distribution in names and not top.startswith("_"))
        for top in tops:
            found = importlib.util.find_spec(top)
            if found is None:
                continue
            if found.submodule_search_locations:
                for location in found.submodule_search_locations:
                    root = pathlib.Path(location)
                    for path in _files_under(root):
                        yield root.parent, path
            elif found.origin:
                yield pathlib.Path(found.origin).parent, pathlib.Path(found.origin)


def pipeline_wheel(spec) -> Optional[PipelineWheel]:
    """The wheel a pipeline's template image needs besides hybridflow's: None
    for a built-in pipeline. A pipeline from a file, or from a module of no
    installed distribution, cannot go into an image: UsageError."""
    import importlib.metadata
    import json

    from hybridflow.errors import UsageError

    origin = spec.origin
    if origin is not None and origin.distribution is not None:
        if origin.distribution == "hybridflow":
            return None
        source = None
        try:
            direct = json.loads(importlib.metadata.distribution(origin.distribution).read_text("direct_url.json") or "{}")
        except (ValueError, importlib.metadata.PackageNotFoundError):
            direct = {}
        if "dir_info" in direct and direct.get("url", "").startswith("file://"):
            source = pathlib.Path(urllib.parse.unquote(urllib.parse.urlsplit(direct["url"]).path))
        return PipelineWheel(origin.distribution, origin.version, source)
    if origin is None or origin.kind == "registered":
        return None  # registered from Python: as the built-in ones (a test registers them)
    raise UsageError(
        f"pipeline {spec.name!r} comes from {origin.ref}, which no installed distribution provides: a "
        "flex template's image installs packages; make it one (`hybridflow new` writes a pyproject.toml "
        "with the entry point) and `pip install` it"
    )


def content_digest(extra: Optional[PipelineWheel] = None) -> str:
    """sha256 of the lock and of every file of the package (name and bytes),
    and of ``extra``'s files: the same for a checkout and for the wheel built
    from it (as long as the checkout's package directory holds no file the
    wheel leaves out)."""
    digest = hashlib.sha256()
    for path in _package_files():
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    if extra is not None:
        digest.update(f"{extra.distribution}=={extra.version}".encode() + b"\0")
        for root, path in extra.files():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def image_tag(extra: Optional[PipelineWheel] = None) -> str:
    """The template image's tag: ``VERSION-`` and 12 hex digits of :func:`content_digest`."""
    return f"{__version__}-{content_digest(extra)[:12]}"


def wheel_command(dist_dir) -> list[str]:
    """The command that puts :data:`WHEEL_NAME` into ``dist_dir``: a build of the
    checkout, or a download of this release when hybridflow is installed from a wheel."""
    dist_dir = str(pathlib.Path(dist_dir).resolve())
    root = source_root()
    if root is not None:
        return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist_dir, str(root)]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--dest", dist_dir, f"hybridflow=={__version__}"]


def build_wheel(dist_dir, plugin: Optional[PipelineWheel] = None) -> pathlib.Path:
    """Runs :func:`wheel_command` (or ``plugin``'s command); returns the wheel's path."""
    command = plugin.command(dist_dir) if plugin else wheel_command(dist_dir)
    name = plugin.filename if plugin else WHEEL_NAME
    completed = subprocess.run(command, capture_output=True, text=True)
    wheel = pathlib.Path(dist_dir) / name
    if completed.returncode != 0 or not wheel.is_file():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConnectorError(
            f"could not make {name} (`{' '.join(command[2:5])} ...` exit {completed.returncode}: {tail[0]}); "
            "pass --sdk_container_image=IMAGE (the image `hybridflow template launch` builds) "
            "or --extra_package=PATH/TO/" + name
        )
    return wheel


def stage_hybridflow(options, spec=None) -> Optional[pathlib.Path]:
    """Makes a Dataflow job's workers able to import hybridflow (and the
    pipeline ``spec``'s own package, for a plug-in pipeline).

    Nothing to do unless the runner is Dataflow (and not ``--dry_run``, which
    stages nothing), or when the workers' image is
    given (``--sdk_container_image``: the template image has hybridflow and its
    requirements), or when hybridflow is already staged (``--setup_file``, an
    ``--extra_package`` named hybridflow-*). Otherwise builds the wheel
    (:func:`build_wheel`) into a temporary directory and adds it to
    ``--extra_package``, which Beam's stager uploads and workers install.
    Returns the staged wheel, or None.
    """
    from apache_beam.options.pipeline_options import SetupOptions, TestOptions, WorkerOptions

    from hybridflow.flex.entrypoint import is_dataflow

    if not is_dataflow(options) or options.view_as(TestOptions).dry_run:
        return None
    setup = options.view_as(SetupOptions)
    if options.view_as(WorkerOptions).sdk_container_image or setup.setup_file:
        return None
    extra = list(setup.extra_packages or [])
    if any(pathlib.Path(p).name.startswith("hybridflow-") for p in extra):
        return None
    directory = tempfile.mkdtemp(prefix="hybridflow-wheel-")
    wheel = build_wheel(directory)
    staged = [str(wheel)]
    plugin = pipeline_wheel(spec) if spec is not None else None
    if plugin is not None and not any(pathlib.Path(p).name == plugin.filename for p in extra):
        staged.append(str(build_wheel(directory, plugin)))
    setup.extra_packages = [*extra, *staged]
    return wheel
