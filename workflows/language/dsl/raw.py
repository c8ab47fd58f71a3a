"""Raw documents: JSON/YAML text to data with line/column errors, and a bounded copy into plain JSON data.

``to_json_data`` walks the document without recursion and stops at the size and depth caps, so a YAML
alias bomb, a self-referencing YAML anchor or a 100,000-level nesting is reported as a problem instead of
exhausting memory or the stack. Dates (YAML timestamps) become ISO strings, scalar keys become strings.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import yaml

from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.limits import MAX_DOC_CHARS

MAX_JSON_DEPTH = 160
MAX_RAW_PROBLEMS = 50
FLOW_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
STEP_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")

_PathLink = tuple[Any, str | int] | None
_BRACKETS = re.compile(r"[\[\]{}]")


def _path_text(link: _PathLink) -> str:
    keys: list[str | int] = []
    while link is not None:
        link, key = link
        keys.append(key)
    out = ""
    for key in reversed(keys):
        out = join_path(out, key)
    return out


def _key(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return None


def _scalar(node: Any) -> tuple[Any, int, str | None]:
    """``(json value, size estimate, problem)`` for a non-container node."""
    if node is None or isinstance(node, bool):
        return node, 5, None
    if isinstance(node, int):
        return node, node.bit_length() // 3 + 2, None
    if isinstance(node, float):
        return node, 24, None if math.isfinite(node) else "numbers must be finite (no NaN or Infinity)"
    if isinstance(node, str):
        return node, len(node) + 2, None
    if isinstance(node, datetime | date):
        return node.isoformat(), 32, None
    return None, 4, f"a {type(node).__name__} is not JSON data"


def to_json_data(doc: Any) -> tuple[Any, list[Problem]]:
    """A plain-JSON copy of ``doc`` and the problems met (size, depth, non-JSON values), bounded in cost."""
    problems: list[Problem] = []
    box: list[Any] = [None]
    size = 0
    stack: list[tuple[Any, Any, Any, int, _PathLink]] = [(doc, box, 0, 0, None)]
    while stack and len(problems) < MAX_RAW_PROBLEMS:
        node, parent, slot, depth, link = stack.pop()
        if depth > MAX_JSON_DEPTH:
            problems.append(Problem(_path_text(link), f"the document nests deeper than {MAX_JSON_DEPTH} levels"))
            break
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            parent[slot] = out
            size += 2
            for k, v in node.items():
                key = _key(k)
                if key is None:
                    problems.append(Problem(_path_text(link), f"object keys must be strings, got {type(k).__name__}"))
                    continue
                out[key] = None
                size += len(key) + 4
                stack.append((v, out, key, depth + 1, (link, key)))
        elif isinstance(node, list | tuple):
            items: list[Any] = [None] * len(node)
            parent[slot] = items
            size += 2 + len(node)
            stack.extend((v, items, i, depth + 1, (link, i)) for i, v in reversed(list(enumerate(node))))
        else:
            value, cost, problem = _scalar(node)
            parent[slot] = value
            size += cost
            if problem:
                problems.append(Problem(_path_text(link), problem))
        if size > MAX_DOC_CHARS:
            problems.append(Problem("", f"the document is larger than {MAX_DOC_CHARS // 1024} KiB"))
            break
    return box[0], problems


def slug_from_source(source: str) -> str:
    """A flow id from a file name: ``examples/003 Fallback.json`` -> ``003-fallback``."""
    stem = PurePath(source).stem if source else ""
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:128]
    return slug if slug and FLOW_ID_RE.fullmatch(slug) else "flow"


def _syntax_error(source: str, message: str) -> FlowValidationError:
    return FlowValidationError([Problem("", message)], source=source)


def _yaml_error(source: str, exc: yaml.MarkedYAMLError) -> FlowValidationError:
    """A YAML syntax error at the line where the construct that is not closed or not well formed opens
    (``context_mark``: the mapping, list or quoted text), with where the parser gave up in the message."""
    problem, opens = exc.problem_mark, exc.context_mark
    mark = opens or problem
    what = exc.problem or exc.context or "syntax error"
    message = f"invalid YAML at line {mark.line + 1} column {mark.column + 1}" if mark else "invalid YAML"
    if opens is not None and exc.context:
        message += f": {exc.context.removeprefix('while ')}, which opens here"
        if problem is not None and (problem.line, problem.column) != (opens.line, opens.column):
            message += f"; at line {problem.line + 1} column {problem.column + 1}"
    message += f": {what}" if what != exc.context else ""
    return FlowValidationError([Problem("", message, line=mark.line + 1 if mark else None,
                                        column=mark.column + 1 if mark else None)], source=source)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_text(text: str, source: str) -> Any:
    """``json.loads`` with line/column errors as ``FlowValidationError``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FlowValidationError([Problem("", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                                           line=exc.lineno, column=exc.colno)], source=source) from None
    except RecursionError:
        raise _syntax_error(source, "invalid JSON: the document nests too deeply") from None
    except ValueError as exc:
        raise _syntax_error(source, f"invalid JSON: {exc}") from None


def _flow_depth_exceeded(text: str) -> bool:
    """Whether ``[``/``{`` nest deeper than the cap (PyYAML takes seconds on thousands of open brackets)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        if depth > MAX_JSON_DEPTH:
            return True
    return False


_BOOL = "tag:yaml.org,2002:bool"


class FlowLoader(yaml.SafeLoader):
    """YAML as editors (YAML 1.2) read it: only true/false are booleans (``yes``, ``no``, ``on``, ``off`` stay
    strings, as in the JSON Schema an editor checks against), and a key given twice in a mapping is an error
    instead of the last one silently winning."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged (<<) keys may be overridden on purpose
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key '{key}' (first given at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


FlowLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def yaml_load(text: str) -> Any:
    """Parse YAML text with ``FlowLoader`` (flows and trigger payloads alike).

    Raises:
        yaml.YAMLError: malformed, or brackets nested deeper than ``MAX_JSON_DEPTH`` (refused before PyYAML
            spends seconds on them: a request body is parsed on the API's event loop).
    """
    if _flow_depth_exceeded(text):
        raise yaml.YAMLError(f"the document nests deeper than {MAX_JSON_DEPTH} levels")
    return yaml.load(text, Loader=FlowLoader)  # safe: FlowLoader is a SafeLoader


def parse_yaml_text(text: str, source: str) -> Any:
    """YAML 1.2-style parsing (``FlowLoader``) with line/column errors as ``FlowValidationError``."""
    if _flow_depth_exceeded(text):
        raise _syntax_error(source, f"the document nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return yaml_load(text)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, exc) from None
    except RecursionError:
        raise _syntax_error(source, "invalid YAML: the document nests too deeply") from None
    except Exception as exc:  # e.g. a timestamp with month 13: still a syntax problem of the document
        raise _syntax_error(source, f"invalid YAML: {type(exc).__name__}: {str(exc)[:200]}") from None


def parse_text(text: str, source: str) -> Any:
    """JSON for ``*.json`` (or text starting with ``{``/``[`` and no YAML suffix), else YAML."""
    if len(text) > MAX_DOC_CHARS:
        raise _syntax_error(source, f"the document is larger than {MAX_DOC_CHARS // 1024} KiB ({len(text)} characters)")
    suffix = PurePath(source).suffix.lower() if source else ""
    is_json = suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip()[:1] in ("{", "["))
    doc = parse_json_text(text, source) if is_json else parse_yaml_text(text, source)
    if doc is None:
        raise _syntax_error(source, "the document is empty")
    return doc
