"""Test files (``*.test.yaml`` / ``*.test.json``): read, checked and turned into cases; see docs/testing.md.

A bad test file is a ``TestFileError`` naming the file and every problem with its place (``tests[1].mocks.x``),
so ``flowtide test`` exits 2 before it runs anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowtide.activities.mocks import answer_problems
from flowtide.client.api import load, prepare
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import Flow

SUFFIXES = (".test.yaml", ".test.yml", ".test.json")
CASE_KEYS = frozenset({"name", "input", "mocks", "signals", "expect", "timeout"})
EXPECT_KEYS = frozenset({"status", "output", "steps", "errors"})
STEP_KEYS = frozenset({"calls", "status", "output", "error"})
SIGNAL_KEYS = frozenset({"name", "payload", "after"})
DEFAULT_TIMEOUT_S = 60.0  # real seconds a case may take (a run waiting for a signal no test sends)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class TestFileError(Exception):
    """A test file that cannot be run: unreadable, malformed, or naming an invalid flow or input."""

    __test__ = False  # not a pytest test class

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path}: " + f"\n{path}: ".join(problems))


@dataclass
class Signal:
    """A signal a case sends at a virtual time after the run started."""

    name: str
    payload: Any
    after_s: float


@dataclass
class Case:
    """One test case of a file."""

    __test__ = False

    name: str
    input: Any
    wire: dict[str, Any]  # the flow's wire form (sub-flow files inlined)
    mocks: dict[str, Any] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass
class TestFile:
    """A test file: its flow and its cases."""

    __test__ = False

    path: str
    flow: Flow
    cases: list[Case]


def seconds(value: Any, where: str) -> float:
    """A duration: a number of seconds or ``1h30m``, ``90s``, ``2d``, ``500ms``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    text = str(value).replace(" ", "")
    if text and _DURATION.sub("", text) == "":
        return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    raise ValueError(f"{where}: {value!r} is not a duration (seconds, or like 90s, 15m, 3h, 2d)")


def find_test_files(paths: list[str]) -> list[Path]:
    """The test files in ``paths`` (files as given; directories searched recursively), sorted."""
    found: list[Path] = []
    for p in map(Path, paths or ["."]):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.name.endswith(SUFFIXES) and f.is_file())
        elif p.exists():
            found.append(p)
        else:
            raise TestFileError(str(p), ["no such file or directory"])
    return found


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise TestFileError(str(path), [f"cannot read it: {exc}".splitlines()[0]]) from None


def _flow(doc: dict[str, Any], path: Path) -> Flow:
    ref = doc.get("flow")
    try:
        if isinstance(ref, str):
            target = (path.parent / ref).resolve()
            if not target.is_file():
                raise TestFileError(str(path), [f"flow: {ref!r} is not a file (paths are relative to the test file)"])
            return load(target)
        if isinstance(ref, dict | list):
            return load(ref, source=str(path))
    except FlowValidationError as err:
        raise TestFileError(str(path), [f"flow: {p}" for p in err.problems if p.severity == "error"]) from None
    raise TestFileError(str(path), ["flow: give the flow file (relative to this file) or an inline flow document"])


def _unknown(value: dict[str, Any], known: frozenset[str], where: str) -> list[str]:
    extra = sorted(set(value) - known)
    return [f"{where}: unknown key(s) {', '.join(extra)} (known: {', '.join(sorted(known))})"] if extra else []


def _expect_problems(expect: Any, where: str) -> list[str]:
    if not isinstance(expect, dict):
        return [f"{where}: a mapping of status, output, steps, errors"]
    problems = _unknown(expect, EXPECT_KEYS, where)
    steps = expect.get("steps", {})
    if not isinstance(steps, dict):
        return [*problems, f"{where}.steps: a mapping of step id to {{calls, status, output, error}}"]
    for sid, want in steps.items():
        if not isinstance(want, dict):
            problems.append(f"{where}.steps.{sid}: a mapping of calls, status, output, error")
        else:
            problems += _unknown(want, STEP_KEYS, f"{where}.steps.{sid}")
    if not isinstance(expect.get("errors", []), list):
        problems.append(f"{where}.errors: a list of error codes (or of error records to match)")
    return problems


def _signals(raw: Any, where: str, problems: list[str]) -> list[Signal]:
    if not isinstance(raw, list):
        problems.append(f"{where}: a list of {{name, payload?, after?}}")
        return []
    out: list[Signal] = []
    for i, s in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            problems.append(f"{at}: give the signal's name ({{name: approve, payload: ..., after: 3h}})")
            continue
        problems += _unknown(s, SIGNAL_KEYS, at)
        try:
            out.append(Signal(s["name"], s.get("payload"), seconds(s.get("after", 0), f"{at}.after")))
        except ValueError as exc:
            problems.append(str(exc))
    return out


def _case(raw: Any, i: int, flow: Flow, problems: list[str]) -> Case | None:
    where = f"tests[{i}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: a mapping with name, input, mocks, signals, expect")
        return None
    problems += _unknown(raw, CASE_KEYS, where)
    name = str(raw.get("name") or f"case {i + 1}")
    mocks = raw.get("mocks") or {}
    if not isinstance(mocks, dict):
        problems.append(f"{where}.mocks: a mapping of step id (or 'METHOD URL-pattern') to answers")
        mocks = {}
    for key, value in mocks.items():
        problems += answer_problems(value, f"{where}.mocks.{key}")
    signals = _signals(raw.get("signals") or [], f"{where}.signals", problems)
    problems += _expect_problems(raw.get("expect") or {}, f"{where}.expect")
    try:
        timeout = seconds(raw.get("timeout", DEFAULT_TIMEOUT_S), f"{where}.timeout")
        _, wire = prepare(flow, raw.get("input"))
    except ValueError as exc:
        problems.append(str(exc))
        return None
    except FlowValidationError as err:
        problems += [f"{where}.input: {p}" for p in err.problems if p.severity == "error"]
        return None
    return Case(name, raw.get("input"), wire, {str(k): v for k, v in mocks.items()}, signals,
                raw.get("expect") or {}, timeout)


def make_case(flow: Any, case: dict[str, Any], where: str = "case") -> Case:
    """One case from a flow (any form ``flowtide.client.api.load`` takes) and a case mapping of a test file.

    Raises:
        TestFileError: the flow, the input or the case is invalid.
    """
    try:
        parsed = load(flow)
    except FlowValidationError as err:
        raise TestFileError(where, [f"flow: {p}" for p in err.problems if p.severity == "error"]) from None
    problems: list[str] = []
    made = _case(case, 0, parsed, problems)
    if problems or made is None:
        raise TestFileError(where, problems)
    return made


def load_test_file(path: str | Path) -> TestFile:
    """Read and check one test file.

    Raises:
        TestFileError: the file cannot be run; ``problems`` says what and where.
    """
    path = Path(path)
    doc = _read(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list) or not doc["tests"]:
        raise TestFileError(str(path), ["a test file is a mapping with `flow` and a non-empty list `tests`"])
    problems = _unknown(doc, frozenset({"flow", "tests"}), "(top level)")
    flow = _flow(doc, path)
    cases = [c for i, raw in enumerate(doc["tests"]) if (c := _case(raw, i, flow, problems)) is not None]
    if problems:
        raise TestFileError(str(path), problems)
    return TestFile(str(path), flow, cases)
