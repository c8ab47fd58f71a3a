"""A case's expectations held against its run record, and the readable diff of what differs."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Mismatch:
    """One expectation that did not hold: where (``output``, ``steps.charge.calls``), expected and actual."""

    where: str
    expected: Any
    actual: Any

    def diff(self) -> str:
        """``where``, then a unified diff of expected and actual as indented JSON (one line for scalars)."""
        want, got = _text(self.expected), _text(self.actual)
        if "\n" not in want and "\n" not in got:
            return f"{self.where}: expected {want}, got {got}"
        lines = difflib.unified_diff(want.splitlines(), got.splitlines(), "expected", "actual", lineterm="", n=3)
        return f"{self.where}:\n" + "\n".join(f"  {line}" for line in lines)


def _text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def step_rows(record: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    """The record's rows of ``step_id`` (every iteration and retry)."""
    return [r for r in record.get("steps") or [] if r.get("stepId") == step_id]


def step_actual(record: dict[str, Any], step_id: str) -> dict[str, Any]:
    """What the record says of one step: calls (attempts of every row), status, output and error code of the
    last row that was not superseded by an onError retry (``None`` for a step that never ran)."""
    rows = step_rows(record, step_id)
    if not rows:
        return {"calls": 0, "status": None, "output": None, "error": None}
    last = next((r for r in reversed(rows) if not r.get("retried")), rows[-1])
    return {"calls": sum(int(r.get("attempts") or 0) for r in rows), "status": last.get("status"),
            "output": last.get("output"), "error": (last.get("error") or {}).get("code")}


def _errors(record: dict[str, Any], expected: list[Any]) -> tuple[list[Any], list[Any]]:
    """Expected and actual errors in the same spelling: codes, or records cut to the keys the test names."""
    actual = record.get("errors") or []
    if all(isinstance(e, str) for e in expected):
        return expected, [e.get("code") for e in actual]
    keys = set().union(*(e for e in expected if isinstance(e, dict)))
    shown = [{k: e.get(k) for k in sorted(keys) if k in e} for e in actual]
    return [e if isinstance(e, dict) else {"code": e} for e in expected], shown


def check(expect: dict[str, Any], record: dict[str, Any]) -> list[Mismatch]:
    """Every expectation of a case that the run record does not meet (``[]``: the case passes)."""
    found: list[Mismatch] = []
    for key in ("status", "output"):
        if key in expect and expect[key] != record.get(key):
            found.append(Mismatch(key, expect[key], record.get(key)))
    for step_id, want in (expect.get("steps") or {}).items():
        have = step_actual(record, str(step_id))
        for key, value in want.items():
            if value != have[key]:
                found.append(Mismatch(f"steps.{step_id}.{key}", value, have[key]))
    if "errors" in expect:
        want_errors, have_errors = _errors(record, list(expect["errors"]))
        if want_errors != have_errors:
            found.append(Mismatch("errors", want_errors, have_errors))
    return found
