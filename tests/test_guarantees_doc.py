"""docs/guarantees.md: every test its lines name exists, and its command examples print what it says."""

import ast
import re

from tests._docs import DOCS, example, run_sh

PAGE = DOCS / "guarantees.md"
REPO = DOCS.parent
TEST_NAME = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _section(title: str) -> str:
    text = PAGE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_every_test_the_page_names_exists():
    named = TEST_NAME.findall(PAGE.read_text())
    table = TEST_NAME.findall(_section("Per source and sink"))
    assert len(table) > 20
    rows = [line for line in _section("Per source and sink").splitlines() if line.startswith("| ") and "---" not in line]
    assert all(TEST_NAME.search(row) for row in rows[1:]), "every row of the table names a test"
    missing = []
    for path, name in set(named):
        tree = ast.parse((REPO / path).read_text())
        if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert missing == []


def test_a_local_savepoint_restore_is_one_line(tmp_path):
    text = PAGE.read_text()
    expected = re.search(r"<!-- example: flink-local-savepoint -->\n```sh\n.*?```\n\nprints\n\n```\n(.*?)```", text, re.S)
    done = run_sh(example("guarantees.md", "flink-local-savepoint"), tmp_path, timeout=120)
    assert done.stdout == expected.group(1), done.stdout + done.stderr
