"""Every example of every docs page is run by a test.

A test runs an example by calling ``example("PAGE.md", "NAME" ...)`` from
tests/_docs.py with both names written out; this test reads the test files
for those calls, so it fails when a page gains an example (or renames one)
that no test runs, and when a test asks for an example a page no longer has.
"""

import pathlib
import re

import tests._docs as docs

TESTS = pathlib.Path(__file__).resolve().parent
_CALL = re.compile(r"""\bexample\(\s*["']([\w.-]+\.md)["']\s*,\s*["']([\w-]+)["']""")


def _run_by_tests() -> set:
    here = pathlib.Path(__file__).resolve()
    return {match for path in TESTS.rglob("*.py") if path != here for match in _CALL.findall(path.read_text())}


def _marked() -> set:
    return {(page.name, name) for page in sorted(docs.DOCS.glob("*.md")) for name in docs.marked_examples(page.name)}


def test_every_docs_example_is_run_by_a_test():
    missing = sorted(_marked() - _run_by_tests())
    assert not missing, "examples no test runs (call tests._docs.example(PAGE, NAME) in one): " + ", ".join(
        f"docs/{page} {name}" for page, name in missing
    )


def test_every_example_a_test_runs_exists():
    gone = sorted(_run_by_tests() - _marked())
    assert not gone, "tests ask for examples the docs do not have: " + ", ".join(f"docs/{p} {n}" for p, n in gone)


def test_the_check_sees_an_example_no_test_runs(tmp_path, monkeypatch):
    (tmp_path / "new.md").write_text("# new\n\n<!-- example: untested -->\n```python\nprint(1)\n```\n")
    monkeypatch.setattr(docs, "DOCS", tmp_path)
    assert _marked() - _run_by_tests() == {("new.md", "untested")}
