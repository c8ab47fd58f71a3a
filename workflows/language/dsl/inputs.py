"""Per-kind input rules: required keys, the known keys of the built-in control kinds, template and
condition syntax, ``core.validate`` schemas and inline ``core.sub-flow`` documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from flowtide.workflows.errors import Problem
from flowtide.workflows.kinds import FOR_EACH, KINDS
from flowtide.workflows.language import conditions, templates
from flowtide.workflows.language._rules import newer_rules
from flowtide.workflows.language._schemas import remote_refs
from flowtide.workflows.language._webhook import webhook_header_problem
from flowtide.workflows.language.loop_policy import concurrency_problems, policy_problems, unknown_stop_codes
from flowtide.workflows.language.pure import HASH_ALGORITHMS
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.language.values import did_you_mean, short
from flowtide.workflows.limits import MAX_WAIT_S

if TYPE_CHECKING:
    from flowtide.workflows.language.dsl.models import Step, StepInfo

ChildParser = Callable[[Any, str, int, str], dict[str, Any] | None]

# Both derived from the kinds' declarations (workflows/kinds.py).
# Each group is "at least one of these keys must be set".
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    k.name: list(k.inputs.required) for k in KINDS.values() if k.inputs.required}
# The complete input keys of the kinds that accept no other key (other kinds accept any key).
KNOWN: dict[str, frozenset[str]] = {k.name: k.inputs.names for k in KINDS.values() if not k.inputs.other_keys}


@lru_cache(maxsize=256)
def _schema_error(text: str) -> tuple[tuple[str | int, ...], str] | None:
    """``(path inside the schema, message)`` of the first problem of a JSON Schema given as JSON text."""
    schema = json.loads(text)
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except SchemaError as exc:
        return tuple(p if isinstance(p, int) else str(p) for p in exc.absolute_path), exc.message[:300]
    except RecursionError:
        return (), "the JSON Schema nests too deeply"
    except Exception as exc:  # a schema so odd that the meta-validator trips: still a document problem
        return (), f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def schema_problems(schema: Any, path: str) -> list[Problem]:
    """Problems of a JSON Schema (by its ``$schema`` draft, Draft 2020-12 by default); results are cached."""
    if not isinstance(schema, dict | bool):
        return [Problem(path, f"must be a JSON Schema object (got {short(schema)})")]
    remote = [Problem(_inside(path, where), f"{ref[:200]!r} points outside the document: only references inside "
                      "it ('#/$defs/...') are resolved (nothing is fetched)")
              for where, ref in (remote_refs(schema) if newer_rules() else [])]
    if remote:
        return remote
    try:
        found = _schema_error(json.dumps(schema, sort_keys=True))
    except (TypeError, ValueError, RecursionError):
        return [Problem(path, "the JSON Schema is not plain JSON data or nests too deeply")]
    if found is None:
        return []
    return [Problem(_inside(path, found[0]), f"not a valid JSON Schema: {found[1]}")]


def _inside(path: str, parts: tuple[str | int, ...]) -> str:
    for part in parts:
        path = join_path(path, part)
    return path


def _required(kind: str, inp: dict[str, Any], ipath: str) -> list[Problem]:
    out = []
    for group in REQUIRED.get(kind, []):
        if not any(inp.get(k) is not None for k in group):
            keys = " or ".join(f"'{k}'" for k in group)
            out.append(Problem(ipath, f"{kind} needs {keys} in its input"))
    return out


def _unknown(kind: str, inp: dict[str, Any], ipath: str) -> list[Problem]:
    known = KNOWN.get(kind)
    if known is None:
        return []
    out = []
    for key in inp:
        if key not in known and key not in ("then", "else", "steps"):
            out.append(Problem(join_path(ipath, key),
                               f"unknown input key '{key[:60]}' for {kind}{did_you_mean(key, sorted(known))}"))
    return out


def _sub_flow(sid: str, inp: dict[str, Any], ipath: str, depth: int, problems: list[Problem],
              child_parser: ChildParser) -> dict[str, Any]:
    flow = inp.get("flow")
    if flow is None:
        if "flowFile" in inp and not isinstance(inp["flowFile"], str):
            problems.append(Problem(join_path(ipath, "flowFile"),
                                    f"must be a file path (got {short(inp['flowFile'])})"))
        return inp
    if not isinstance(flow, dict | list):
        problems.append(Problem(join_path(ipath, "flow"), "must be an inline flow document (an object or a list "
                                                          "of steps); use flowFile for a file"))
        return inp
    wire = child_parser(flow, join_path(ipath, "flow"), depth + 1, sid)
    return {**inp, "flow": wire} if wire is not None else inp


def _wait_seconds(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_WAIT_S:
        return f"must be a number of seconds from 0 to {MAX_WAIT_S} (100 years), got {short(value)}"
    return None


def _hash_algorithm(value: Any) -> str | None:
    name = str(value).lower().replace("-", "")
    if name not in HASH_ALGORITHMS:
        return (f"unknown hash algorithm {short(value)}{did_you_mean(name, list(HASH_ALGORITHMS))} "
                f"(one of {', '.join(HASH_ALGORITHMS)})")
    return None


def _one_line_addresses(value: Any) -> str | None:
    if not newer_rules():
        return None
    items = value if isinstance(value, list) else [value]
    if any(isinstance(i, str) and any(c in i for c in "\r\n\x00") for i in items):
        return "an address must not contain CR, LF or NUL (they would inject mail headers)"
    return None


# Literal values (no template) that the step would refuse at run time: reported by `validate` up front.
LITERAL_CHECKS: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("core.delay", "seconds"): _wait_seconds,
    ("core.wait-for-signal", "timeout"): _wait_seconds,
    ("crypto.hash", "algorithm"): _hash_algorithm,
    ("crypto.hmac", "algorithm"): _hash_algorithm,
    **{("email.send", key): _one_line_addresses for key in ("from", "to", "cc", "bcc", "replyTo")},
}


def _literals(kind: str, inp: dict[str, Any], ipath: str) -> list[Problem]:
    out = []
    for key, value in inp.items():
        check = LITERAL_CHECKS.get((kind, key))
        if check is not None and not (isinstance(value, str) and "{{" in value):
            message = check(value)
            if message:
                out.append(Problem(join_path(ipath, key), message))
    return out


def check_input(kind: str | None, sid: str, inp: dict[str, Any], ipath: str, depth: int, problems: list[Problem],
                child_parser: ChildParser) -> dict[str, Any]:
    """Check a step's input for its kind (templates only when the kind is unknown); return the input with an
    inline sub-flow in canonical form. ``ipath`` is the input's path (the step's when it has no input)."""
    if kind is not None:
        problems.extend(_required(kind, inp, ipath))
        problems.extend(_unknown(kind, inp, ipath))
        problems.extend(_literals(kind, inp, ipath))
    for key, value in inp.items():
        where = join_path(ipath, key)
        if kind == "core.if" and key == "condition":
            problems.extend(conditions.check_syntax(value, where))
        elif not (kind == "core.sub-flow" and key == "flow"):
            problems.extend(templates.check_syntax(value, where))
    if kind == "core.validate" and isinstance(inp.get("schema"), dict) and not templates.references(inp["schema"]):
        problems.extend(schema_problems(inp["schema"], join_path(ipath, "schema")))
    if kind == FOR_EACH:
        problems.extend(_loop_problems(inp, ipath))
    if kind == "core.return" and newer_rules():
        problems.extend(_webhook_problems(inp.get("webhookResponse"), join_path(ipath, "webhookResponse")))
    if kind == "core.sub-flow":
        return _sub_flow(sid, inp, ipath, depth, problems, child_parser)
    return inp


def _webhook_problems(spec: Any, path: str) -> list[Problem]:
    """Header names and literal values of a webhook answer the service would refuse (see ``_webhook``)."""
    headers = spec.get("headers") if isinstance(spec, dict) else None
    if not isinstance(headers, dict):
        return []
    out = []
    for name, value in headers.items():
        literal = value if not templates.references(value) else ""  # a template is checked at answer time
        why = webhook_header_problem(name, literal)
        if why:
            out.append(Problem(join_path(join_path(path, "headers"), name), why))
    return out


def _loop_problems(inp: dict[str, Any], ipath: str) -> list[Problem]:
    """Bad ``concurrency`` / ``failurePolicy`` values of a for-each (template values are checked at run time)."""
    out = []
    for key, check in (("concurrency", concurrency_problems), ("failurePolicy", policy_problems)):
        value = inp.get(key)
        if value is not None and not templates.references(value):
            out += [Problem(join_path(ipath, key) + sub, msg) for sub, msg in check(value)]
    out += [Problem(join_path(ipath, "failurePolicy") + sub, msg, severity="warning")
            for sub, msg in unknown_stop_codes(inp.get("failurePolicy"))]
    return out


def check_step_conditions(step: Step, info: StepInfo, problems: list[Problem]) -> None:
    """Syntax of ``skipCondition`` and of a graph-style ``condition.if``."""
    if step.skip_condition is not None:
        problems.extend(conditions.check_syntax(step.skip_condition, info.key_path("skipCondition")))
    if step.condition is not None:
        problems.extend(conditions.check_syntax(step.condition.if_, join_path(info.key_path("condition"), "if")))
