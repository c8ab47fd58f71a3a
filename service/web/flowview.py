"""What the flows pages show, computed without I/O: health per flow, its bar, a highlighted document, a diff."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from typing import Any

import yaml

from flowtide.client.listing import STATUSES

# the bar's colours (SVG presentation attributes: the CSP forbids inline styles, not these); text says it too
COLOURS = {"completed": "#2e7d32", "completed_with_errors": "#b26a00", "failed": "#c62828", "running": "#1565c0",
           "waiting": "#5e35b1", "paused": "#6d4c41", "cancelled": "#616161", "timed_out": "#ad1457",
           "terminated": "#424242"}
BAR_WIDTH, BAR_HEIGHT = 160, 12
FAILED = ("failed",)  # what counts as a failure of a run (completed_with_errors went on)


def label(status: str) -> str:
    """``completed_with_errors`` -> ``completed with errors``."""
    return status.replace("_", " ")


def health(rows: list[tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """Per flow id: ``counts`` by status (``STATUSES`` order), ``total``, ``failed`` and per ``revisions``
    the same counts, from ``recent_rows``' ``(row, revision)`` pairs."""
    out: dict[str, dict[str, Any]] = {}
    for row, revision in rows:
        h = out.setdefault(str(row.flow_id), {"counts": Counter(), "revisions": {}})
        h["counts"][row.status] += 1
        h["revisions"].setdefault(revision, Counter())[row.status] += 1
    for h in out.values():
        h["total"] = sum(h["counts"].values())
        h["failed"] = sum(h["counts"][s] for s in FAILED)
        h["counts"] = {s: h["counts"][s] for s in STATUSES if h["counts"][s]}
    return out


def last_failures(rows: list[tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """Per flow id, its newest failed run: ``runId``, ``code``, ``step``, ``at`` (rows newest first)."""
    out: dict[str, dict[str, Any]] = {}
    for row, revision in sorted(rows, key=lambda r: r[0].completed_at or r[0].started_at, reverse=True):
        out.setdefault(str(row.flow_id), {"runId": row.run_id, "code": row.error_code or "(no code)",
                                          "step": row.failed_step, "revision": revision,
                                          "at": row.completed_at or row.started_at})
    return out


def bar(counts: dict[str, int]) -> dict[str, Any]:
    """A stacked bar of ``counts`` (SVG rectangles in ``counts``' order) and its text alternative."""
    total = sum(counts.values())
    rects, x = [], 0.0
    for status, n in counts.items():
        w = BAR_WIDTH * n / total if total else 0
        rects.append({"x": round(x, 2), "width": round(w, 2), "fill": COLOURS.get(status, "#757575"),
                      "title": f"{n} {label(status)}"})
        x += w
    text = ", ".join(f"{n} {label(s)}" for s, n in counts.items()) or "no runs"
    return {"rects": rects, "width": BAR_WIDTH, "height": BAR_HEIGHT, "text": text, "total": total}


def document_text(document: Any, fmt: str) -> str:
    """The stored document as the page shows it: YAML (keys in their stored order) or indented JSON."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False)
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))


_TOKEN = re.compile(r"""
    (?P<comment>(?:^|(?<=\s))\#.*$)
  | (?P<key>"(?:[^"\\]|\\.)*"(?=\s*:(\s|$))|[^\s\-\[\]{},:"'#][^:#]*?(?=:(\s|$)))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')
  | (?P<lit>\b(?:true|false|null|True|False|None|~)\b)
  | (?P<num>-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)
  | (?P<punct>[\[\]{},]|[:-](?=\s|$))
""", re.VERBOSE)


def highlight(text: str) -> list[list[tuple[str, str]]]:
    """``text`` (YAML or JSON) as lines of ``(class, piece)``: keys, strings, numbers, literals, punctuation,
    comments; anything else is plain (``""``). A small tokenizer: enough to read a flow, never executed."""
    lines = []
    for line in text.splitlines():
        parts: list[tuple[str, str]] = []
        pos = 0
        for m in _TOKEN.finditer(line):
            if m.start() > pos:
                parts.append(("", line[pos:m.start()]))
            parts.append((str(m.lastgroup), m.group()))
            pos = m.end()
        if pos < len(line):
            parts.append(("", line[pos:]))
        lines.append(parts)
    return lines


# Lines per side the page compares: the comparison is quadratic at worst (two 4,000-line documents that differ
# everywhere take about 1 s of a replica's CPU, two of 20,000 lines 23 s), so larger ones are left to the CLI.
MAX_DIFF_LINES = 3000


class TooLargeToCompare(ValueError):  # noqa: N818 - shown on the page as one line
    """A revision has more lines than ``MAX_DIFF_LINES``."""


def diff_rows(old: str, new: str, context: int = 3) -> list[dict[str, Any]]:
    """The changes from ``old`` to ``new`` as table rows (``kind``: ``same``, ``removed``, ``added``, ``gap``)
    with both line numbers, ``context`` unchanged lines around each change.

    Raises:
        TooLargeToCompare: a side has more than ``MAX_DIFF_LINES`` lines.
    """
    a, b = old.splitlines(), new.splitlines()
    if max(len(a), len(b)) > MAX_DIFF_LINES:
        raise TooLargeToCompare(f"a revision has {max(len(a), len(b)):,} lines; the page compares at most "
                                f"{MAX_DIFF_LINES:,}")
    rows: list[dict[str, Any]] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        if rows:
            rows.append({"kind": "gap", "old": None, "new": None, "text": "…"})
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [{"kind": "same", "old": i + 1, "new": j + 1, "text": a[i]}
                         for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
                continue
            rows += [{"kind": "removed", "old": i + 1, "new": None, "text": a[i]} for i in range(i1, i2)]
            rows += [{"kind": "added", "old": None, "new": j + 1, "text": b[j]} for j in range(j1, j2)]
    return rows
