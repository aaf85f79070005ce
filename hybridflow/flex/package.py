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
  package's files: a new tag whenever either changes, the same tag (and no
  rebuild) when neither does.
- :func:`wheel_command`: how the image's wheel is made: ``pip wheel`` of the
  source checkout, or, for an installed release, ``pip download`` of the same
  release.
- :func:`stage_hybridflow`: ``hybridflow run --profile dataflow`` without
  ``--sdk_container_image`` stages a wheel of hybridflow as an extra package.
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys
import tempfile
from typing import Optional

from hybridflow import __version__
from hybridflow.errors import ConnectorError

__all__ = [
    "LOCK_PATH",
    "WHEEL_NAME",
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


def _package_files():
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            yield path


def content_digest() -> str:
    """sha256 of the lock and of every file of the package (name and bytes):
    the same for a checkout and for the wheel built from it (as long as the
    checkout's package directory holds no file the wheel leaves out)."""
    digest = hashlib.sha256()
    for path in _package_files():
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def image_tag() -> str:
    """The template image's tag: ``VERSION-`` and 12 hex digits of :func:`content_digest`."""
    return f"{__version__}-{content_digest()[:12]}"


def wheel_command(dist_dir) -> list[str]:
    """The command that puts :data:`WHEEL_NAME` into ``dist_dir``: a build of the
    checkout, or a download of this release when hybridflow is installed from a wheel."""
    dist_dir = str(pathlib.Path(dist_dir).resolve())
    root = source_root()
    if root is not None:
        return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist_dir, str(root)]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--dest", dist_dir, f"hybridflow=={__version__}"]


def build_wheel(dist_dir) -> pathlib.Path:
    """Runs :func:`wheel_command`; returns the wheel's path."""
    command = wheel_command(dist_dir)
    completed = subprocess.run(command, capture_output=True, text=True)
    wheel = pathlib.Path(dist_dir) / WHEEL_NAME
    if completed.returncode != 0 or not wheel.is_file():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConnectorError(
            f"could not make {WHEEL_NAME} (`{' '.join(command[2:5])} ...` exit {completed.returncode}: {tail[0]}); "
            "pass --sdk_container_image=IMAGE (the image `hybridflow template launch` builds) "
            "or --extra_package=PATH/TO/" + WHEEL_NAME
        )
    return wheel


def stage_hybridflow(options) -> Optional[pathlib.Path]:
    """Makes a Dataflow job's workers able to import hybridflow.

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
    wheel = build_wheel(tempfile.mkdtemp(prefix="hybridflow-wheel-"))
    setup.extra_packages = [*extra, str(wheel)]
    return wheel
