"""What ``flowtide test`` reports: the steps and branches the cases exercised, and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowtide.client.testing.runner import CaseResult


def _walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        for block in (step.get("blocks") or {}).values():
            yield from _walk(block)


@dataclass
class Coverage:
    """Steps of a flow and ``core.if`` branches, and which of them the cases ran."""

    steps: list[str]
    branches: list[str]  # "<stepId>.then", "<stepId>.else"
    ran: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, wire: dict[str, Any]) -> Coverage:
        steps = list(_walk(wire.get("steps") or []))
        return cls([s["id"] for s in steps],
                   [f"{s['id']}.{b}" for s in steps if s.get("kind") == "core.if" for b in ("then", "else")])

    def add(self, record: dict[str, Any]) -> None:
        """Count the steps and branches one run record shows."""
        for row in record.get("steps") or []:
            if row.get("status") == "skipped":
                continue
            self.ran.add(row.get("stepId"))
            if row.get("stepType") == "core.if" and (branch := _branch(row)):
                self.taken.add(f"{row['stepId']}.{branch}")

    def lines(self) -> list[str]:
        """``steps 5/6 (not run: x)`` and ``branches 1/2 (not taken: check.else)``."""
        out = [_line("steps run", self.steps, self.ran, "not run")]
        if self.branches:
            out.append(_line("branches taken", self.branches, self.taken, "not taken"))
        return out


def _branch(row: dict[str, Any]) -> str | None:
    """The branch a ``core.if`` row took: its output says so, or (when the branch ended the run with a
    ``core.return`` and the row has no output) the condition's result in its input."""
    out, inp = row.get("output"), row.get("input")
    if isinstance(out, dict) and out.get("branch"):
        return str(out["branch"])
    if isinstance(inp, dict) and isinstance(inp.get("result"), bool):
        return "then" if inp["result"] else "else"
    return None


def _line(label: str, every: list[str], seen: set[str], missing_label: str) -> str:
    missing = [s for s in every if s not in seen]
    tail = f" ({missing_label}: {', '.join(missing)})" if missing else ""
    return f"{label}: {len(every) - len(missing)}/{len(every)}{tail}"


def junit_xml(results: list[CaseResult], errors: dict[str, str]) -> str:
    """JUnit XML: one ``testsuite`` per file, one ``testcase`` per case; a bad file is one ``error``."""
    root = ET.Element("testsuites", name="flowtide test")
    files = list(dict.fromkeys([*(r.file for r in results), *errors]))
    for path in files:
        mine = [r for r in results if r.file == path]
        suite = ET.SubElement(root, "testsuite", name=path, tests=str(len(mine) or 1),
                              failures=str(sum(not r.passed for r in mine)), errors=str(int(path in errors)),
                              time=f"{sum(r.seconds for r in mine):.3f}")
        if path in errors:
            case = ET.SubElement(suite, "testcase", classname=path, name="(test file)")
            ET.SubElement(case, "error", message="bad test file").text = errors[path]
        for r in mine:
            case = ET.SubElement(suite, "testcase", classname=path, name=r.name, time=f"{r.seconds:.3f}")
            if not r.passed:
                first = (r.mismatches[0].where if r.mismatches else r.notes[0]).splitlines()[0]
                ET.SubElement(case, "failure", message=f"{first} differs" if r.mismatches else first
                              ).text = r.explain()
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
