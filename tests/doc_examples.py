"""The code examples of a docs page: a fenced block right after an
``<!-- example: NAME -->`` line. Tests run each one; :func:`check_all_run`
fails when a page has an example no test ran."""

import pathlib
import re

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
_EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def examples(page: str) -> dict:
    """{name: (language, code)} of ``docs/page``."""
    text = (DOCS / page).read_text()
    found = {name: (lang, code) for name, lang, code in _EXAMPLE.findall(text)}
    fences = len(re.findall(r"^```\w+\n", text, re.M))
    assert fences == len(found), f"docs/{page}: {fences - len(found)} code block(s) without an <!-- example: --> mark"
    return found


def shell_lines(code: str) -> list[str]:
    """The commands of a sh block: continuation lines joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
