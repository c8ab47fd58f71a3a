"""The tests that the documentation names as proof of a rule exist, so its tables cannot rot.

A reference is a code span: `tests/<path>.py` (the file must exist), `tests/<path>.py::name` (the file must
define a test function ``name``) or `...::name` (``name`` in the last file named above it in the same page).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
SPAN = re.compile(r"`(tests/[\w./-]+\.py|\.\.\.(?=::))(?:::(\w+))?`")


def references(text: str) -> list[tuple[str, str | None]]:
    """``(file, name or None)`` for every test reference in a page, ``...`` resolved to the file above."""
    found: list[tuple[str, str | None]] = []
    last: str | None = None
    for path, name in SPAN.findall(text):
        if path == "...":
            assert last is not None, f"`...::{name}` has no `tests/...py` reference above it"
            path = last
        last = path
        found.append((path, name or None))
    return found


@cache
def defined_tests(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(n.name for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_"))


def test_reference_parser() -> None:
    text = "`tests/a/test_x.py::test_one` then `...::test_two`, `tests/b.py`, `...` and `...::test_three`"
    assert references(text) == [("tests/a/test_x.py", "test_one"), ("tests/a/test_x.py", "test_two"),
                                 ("tests/b.py", None), ("tests/b.py", "test_three")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_referenced_test_exists(page: Path) -> None:
    missing = []
    for path, name in references(page.read_text(encoding="utf-8")):
        if not (ROOT / path).is_file():
            missing.append(path)
        elif name is not None and name not in defined_tests(path):
            missing.append(f"{path}::{name}")
    assert missing == [], f"{page.name} names tests that do not exist"


def test_the_error_handling_table_names_tests() -> None:
    refs = references((ROOT / "docs" / "error-handling.md").read_text(encoding="utf-8"))
    named = {name for _, name in refs if name}
    assert len(named) >= 40
    seed_tests = defined_tests("tests/workflows/test_seed_recipes.py")
    assert {n for n in seed_tests if n.startswith("test_seed_")} <= named  # every seed recipe's test has a row


def test_flow_language_alias_table_is_the_code_table() -> None:
    from flowtide.workflows.kinds import ALIASES, KINDS
    text = (ROOT / "docs" / "flow-language.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w.:-]+)` \| `([\w.-]+)` \|$", text, flags=re.M))
    assert rows == ALIASES
    assert all(f"`{kind}`" in text for kind in KINDS)


def test_flow_language_lists_every_filter() -> None:
    from flowtide.workflows.language.templates.filters import FILTERS
    text = (ROOT / "docs" / "flow-language.md").read_text(encoding="utf-8")
    table = text[text.index("### Filters"):text.index("### Missing values")]
    documented = set(re.findall(r"^\| `(\w+)|, `(\w+)", table, flags=re.M))
    names = {a or b for a, b in documented}
    assert set(FILTERS) - names == set()
