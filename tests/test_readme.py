"""The README's composing example runs as written, and every link of the
README and the docs pages reaches a file and a heading that exist."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_compose_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "no python block in the README"
    namespace = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: pathlib.Path) -> set:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a '#' in a code block is no heading
    return {_slug(m) for m in re.findall(r"^#+ (.*)$", text, re.M)}


def _links(page: pathlib.Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in _LINK.findall(text):
        if not re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            yield target


def test_every_relative_link_reaches_a_file_and_a_heading():
    broken = []
    for page in PAGES:
        for target in _links(page):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading in {linked.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_sees_a_missing_heading(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title: `x` (y)\n\n[ok](#title-x-y) [bad](#nothing)\n")
    assert _anchors(page) == {"title-x-y"}
    assert list(_links(page)) == ["#title-x-y", "#nothing"]
