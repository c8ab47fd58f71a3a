"""The flows pages' pure parts: health counts, the bar, the tokenizer and the diff."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowtide.service.web import flowview


def _row(flow: str, status: str, minute: int, code: str | None = None) -> SimpleNamespace:
    at = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return SimpleNamespace(flow_id=flow, status=status, run_id=f"r{minute}", error_code=code, failed_step="s",
                           started_at=at, completed_at=at)


def test_health_counts_by_status_and_revision_and_the_newest_failure() -> None:
    rows = [(_row("a", "failed", 5, "OLD"), 1), (_row("a", "completed", 6), 2), (_row("a", "failed", 7, "NEW"), 2),
            (_row("b", "running", 1), 1)]
    h = flowview.health(rows)
    assert h["a"]["counts"] == {"completed": 1, "failed": 2} and h["a"]["total"] == 3 and h["a"]["failed"] == 2
    assert dict(h["a"]["revisions"][2]) == {"completed": 1, "failed": 1}
    assert flowview.last_failures([r for r in rows if r[0].status == "failed"])["a"]["code"] == "NEW"
    bar = flowview.bar(h["a"]["counts"])
    assert [r["width"] for r in bar["rects"]] == [53.33, 106.67] and bar["text"] == "1 completed, 2 failed"
    assert flowview.bar({})["rects"] == [] and flowview.bar({})["text"] == "no runs"


def test_highlight_marks_keys_strings_literals_and_only_real_comments() -> None:
    lines = flowview.highlight('id: a\nurl: http://x/#frag  # note\n- flag: true\n  "k": "v: #1"')
    kinds = [[c for c, _ in line if c] for line in lines]
    assert kinds[0] == ["key", "punct"]
    assert kinds[1] == ["key", "punct", "comment"] and lines[1][-1] == ("comment", "# note")
    assert kinds[2] == ["punct", "key", "punct", "lit"]
    assert kinds[3] == ["key", "punct", "str"]


@given(st.text(max_size=200))
def test_highlight_loses_and_adds_nothing(text: str) -> None:
    assert ["".join(p for _, p in line) for line in flowview.highlight(text)] == text.splitlines()


def test_diff_rows_number_both_sides_and_mark_gaps() -> None:
    old = "\n".join(f"line {i}" for i in range(1, 21))
    new = old.replace("line 3", "line three").replace("line 18\n", "")
    rows = flowview.diff_rows(old, new, context=1)
    assert {"kind": "removed", "old": 3, "new": None, "text": "line 3"} in rows
    assert {"kind": "added", "old": None, "new": 3, "text": "line three"} in rows
    assert {"kind": "removed", "old": 18, "new": None, "text": "line 18"} in rows
    assert [r["kind"] for r in rows].count("gap") == 1
    assert flowview.diff_rows(old, old) == []


def test_the_page_compares_bounded_documents_only() -> None:
    # a quadratic comparison on the request path: two 20,000-line documents took 23 s of a replica's CPU
    big = "\n".join(f"- step{i}: {i}" for i in range(flowview.MAX_DIFF_LINES + 1))
    with pytest.raises(flowview.TooLargeToCompare, match="at most 3,000"):
        flowview.diff_rows("a: 1", big)
    assert flowview.diff_rows("a: 1", big.split("\n", 1)[1])  # one line under: compared
