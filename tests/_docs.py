"""The code examples of the docs pages, for the tests that execute them (the one helper).

A page marks an example with ``<!-- example: NAME -->`` on the line before
its fenced block. A test runs it by calling :func:`example` with the page and
the name written out (``example("monitoring.md", "metrics-port")``):
tests/test_docs_examples.py reads the tests for those calls and fails when a
page has an example that no test runs.

- :func:`example`: the block's code (its language checked when given);
- :func:`printed`: the unmarked block right after it (what the page says it prints);
- :func:`marked_examples`: ``{name: language}`` of a page;
- :func:`run_sh`: runs a shell example with the ``hybridflow`` of this Python first on PATH;
- :func:`shell_lines`: the commands of a shell example, one a line.
"""

import os
import pathlib
import re
import subprocess
import sys
from typing import Optional

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

_EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w*)\n(.*?)```", re.S)


def _blocks(page: str) -> dict:
    found: dict = {}
    for match in _EXAMPLE.finditer((DOCS / page).read_text()):
        name, language, code = match.groups()
        assert name not in found, f"docs/{page}: two examples named {name!r}"
        found[name] = (language, code, match.end())
    return found


def marked_examples(page: str) -> dict:
    """``{name: language}`` of the examples of ``docs/page``."""
    return {name: language for name, (language, _, _) in _blocks(page).items()}


def example(page: str, name: str, language: Optional[str] = None) -> str:
    """The code of the example ``name`` in ``docs/<page>`` (its fence's
    language must be ``language`` when given)."""
    blocks = _blocks(page)
    assert name in blocks, f"docs/{page} has no example {name!r} (it has: {', '.join(sorted(blocks))})"
    found, code, _ = blocks[name]
    assert language is None or found == language, f"docs/{page} {name}: a {found!r} block, not {language!r}"
    return code


def printed(page: str, name: str) -> str:
    """The text of the unmarked fenced block that follows the example ``name``
    (the output the page shows for it)."""
    text = (DOCS / page).read_text()
    blocks = _blocks(page)
    assert name in blocks, f"docs/{page} has no example {name!r}"
    match = re.compile(r"\n```\n(.*?)```", re.S).search(text, blocks[name][2])
    assert match, f"docs/{page}: no output block after the example {name!r}"
    return match.group(1)


def shell_lines(code: str) -> list:
    """The commands of a sh block: continuation lines joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_sh(code: str, cwd, timeout: float = 900, env=None) -> subprocess.CompletedProcess:
    """Runs a shell example in ``cwd`` (bash -euo pipefail), returning its output."""
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PATH": path, **(env or {})},
    )
