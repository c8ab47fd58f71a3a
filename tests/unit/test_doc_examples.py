"""Every fenced example of README.md and docs/ holds as written, so none can drift from the code.

- a YAML or JSON block parses, and when it is a flow (a document, a bare list of steps, or one step)
  ``flowtide validate`` accepts it with no error;
- each ``flowtide ...`` command of a bash/sh/console block parses with the CLI's own parser, and the example
  files it names exist;
- a Python block compiles (top-level ``await`` allowed);
- ``text`` blocks (output, diagrams) and blocks right after a ``<!-- illustration -->`` line are skipped: they
  show a shape, not something to run. A block in any other language must be one of those.

This is the quick check; ``tests/e2e/test_doc_examples_run.py`` runs the same blocks for real against the stack
of ``flowtide dev`` (CONTRIBUTING.md, "Examples in the docs"), and the first-hour path itself runs in
``tests/e2e/test_first_hour.py``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import flowtide
from flowtide.client.cli.common import UsageError
from flowtide.client.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- illustration -->"


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    illustration: bool

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang or 'no language'})"


def blocks() -> list[Block]:
    out = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)```(\w*)", lines[i])
            if not m:
                i += 1
                continue
            indent, start = m.group(1), i
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            body = "\n".join(line[len(indent):] for line in lines[start + 1:end]) + "\n"
            before = lines[start - 1].strip() if start else ""
            out.append(Block(str(page.relative_to(ROOT)), start + 1, m.group(2), body,
                             before == MARK or m.group(2) == "text"))
            i = end + 1
    return out


ALL = blocks()
CHECKED = [b for b in ALL if not b.illustration]


def flow_document(block: Block) -> dict[str, Any] | list[Any] | None:
    """The flow a YAML or JSON block holds (a document with ``steps``, a list of steps, one step), as a document
    or a list of steps that ``flowtide validate`` reads; a fragment without its ``id`` gets one. ``None`` for
    data (a record, an answer, a configuration file). Raises ``ValueError`` when the block does not parse."""
    try:
        doc = json.loads(block.text) if block.lang == "json" else yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None
    if isinstance(doc, dict) and "steps" not in doc and {"stepType", "action"} & set(doc) and "code" not in doc:
        doc = [doc]  # one step (an error record, with its code, names a stepType too)
    if isinstance(doc, dict) and "steps" in doc:
        return {"id": "example", **doc}
    if isinstance(doc, list) and doc and all(isinstance(s, dict) and {"stepType", "action"} & set(s) for s in doc):
        return doc
    return None


def _flow_problems(block: Block) -> list[str]:
    """A YAML or JSON block parses; when it is a flow it validates."""
    try:
        doc = flow_document(block)
    except ValueError as exc:
        return [f"does not parse: {str(exc).splitlines()[0]}"]
    return [] if doc is None else [f"{p['path']}: {p['message']}" for p in flowtide.validate(doc)]


def _commands(block: Block) -> list[str]:
    """The ``flowtide`` command lines of a shell block (``$ `` prompts in a console block), continued lines
    joined, split at ``&&``, ``;`` and ``|``."""
    text = re.sub(r"\\\n\s*", " ", block.text)
    lines = text.splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    out = []
    for line in lines:
        line = re.sub(r"<[^<>]*>", "PLACEHOLDER", line)  # <run id or prefix>
        for part in re.split(r"&&|;|\||>", line.split(" #")[0] if not line.lstrip().startswith("#") else ""):
            part = part.strip()
            if part.startswith("flowtide "):
                out.append(part)
    return out


def _command_problems(block: Block) -> list[str]:
    problems = []
    parser = build_parser()
    for command in _commands(block):
        argv = shlex.split(command)[1:]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                args = parser.parse_args(argv)
        except UsageError as exc:
            problems.append(f"`{command}`: {exc}")
            continue
        except SystemExit as exc:  # --help
            if exc.code:
                problems.append(f"`{command}`: {err.getvalue().strip()}")
            continue
        for value in vars(args).values():
            for path in value if isinstance(value, list) else [value]:
                if isinstance(path, str) and path.startswith("examples/") and not (ROOT / path).exists():
                    problems.append(f"`{command}`: {path} does not exist")
    return problems


def _python_problems(block: Block) -> list[str]:
    try:
        compile(block.text, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: {exc.msg}"]
    return []


CHECKS = {"yaml": _flow_problems, "json": _flow_problems, "bash": _command_problems, "sh": _command_problems,
          "console": _command_problems, "python": _python_problems}


@pytest.mark.parametrize("block", CHECKED, ids=str)
def test_every_fenced_example_holds(block: Block) -> None:
    check = CHECKS.get(block.lang)
    assert check is not None, (f"{block}: a block in this language cannot be checked: give it a language above "
                               f"({', '.join(CHECKS)}), or mark it with a {MARK} line before it")
    assert check(block) == []


def test_the_checks_catch_drift() -> None:
    bad_flow = Block("x.md", 1, "yaml", "- stepId: a\n  stepType: core.htp\n", False)
    assert any("core.htp" in p for p in _flow_problems(bad_flow))
    assert _flow_problems(Block("x.md", 1, "json", '{"code": "X",}', False))[0].startswith("does not parse")
    bad_command = Block("x.md", 1, "bash", "flowtide run examples/hello.yaml --inptu '{}'\n", False)
    assert any("--inptu" in p for p in _command_problems(bad_command)), _command_problems(bad_command)
    missing = Block("x.md", 1, "console", "$ flowtide validate examples/nope.yaml\n", False)
    assert _command_problems(missing) == ["`flowtide validate examples/nope.yaml`: examples/nope.yaml does not exist"]
    assert len(ALL) > 80 and len(CHECKED) > 40  # the pages were read
