"""A missing machine part skips locally and fails in CI (FLOWTIDE_REQUIRE_PARTS=1), so CI cannot pass on a skip."""

from __future__ import annotations

import pytest

from tests.support import parts


def test_a_missing_part_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(parts.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing: apt-get install chromium"):
        parts.missing("chromium", "apt-get install chromium")
    assert parts.needs(False, "x", "y").name == "skip"


def test_a_missing_part_fails_when_every_part_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parts.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is missing"):
        parts.missing("chromium", "apt-get install chromium")
    mark = parts.needs(False, "x", "y")
    assert (mark.name, mark.args) == ("needs_part", ("x", "y"))  # failed by tests/conftest.py at setup
    assert parts.needs(True, "x", "y").args == ("x",)


def test_ci_requires_every_part() -> None:
    from pathlib import Path
    assert f"export {parts.REQUIRE_ENV}=1" in (Path(__file__).parents[2] / ".ci/run").read_text()
