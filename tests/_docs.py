"""Code examples of the docs pages, for the tests that execute them.

A page marks an example with ``<!-- example: NAME -->`` on the line before
its fenced block; :func:`example` returns the block's code, :func:`run_sh`
runs a shell example with the ``hybridflow`` of this Python first on PATH.
"""

import os
import pathlib
import re
import subprocess
import sys

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def example(page: str, name: str) -> str:
    """The code of the example ``name`` in ``docs/<page>``."""
    text = (DOCS / page).read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", text, re.S)
    assert match, f"docs/{page} has no example {name!r}"
    return match.group(1)


def run_sh(code: str, cwd, timeout: float = 900, env=None) -> subprocess.CompletedProcess:
    """Runs a shell example in ``cwd`` (bash -e), returning its output."""
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-e", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PATH": path, **(env or {})},
    )
