"""A whole flow document (top-level keys, settings, input schema, steps) into a ``Flow``.

Inline ``core.sub-flow`` documents are built by the same code with their own ids, and stored in their
canonical form; a sub-flow that is already canonical (``parse_flow(...).to_wire()``) is read back first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowtide.workflows.errors import Problem
from flowtide.workflows.language.dsl.graph import GraphChecker
from flowtide.workflows.language.dsl.inputs import schema_problems
from flowtide.workflows.language.dsl.models import CircuitBreaker, Flow, Limits, OnError, RetryPolicy, Settings
from flowtide.workflows.language.dsl.raw import FLOW_ID_RE
from flowtide.workflows.language.dsl.steps import StepBuilder, known_keys, model_keys, validate_model
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.language.values import short

TOP_KEYS = ("id", "version", "name", "description", "input", "settings", "steps", "$schema")
SUBMODELS: dict[str, Any] = {"retryPolicy": RetryPolicy, "onError": OnError, "limits": Limits,
                             "circuitBreaker": CircuitBreaker}


@dataclass
class Document:
    """State shared by a flow and its inline sub-flows: the problem list and the step counter."""

    problems: list[Problem] = field(default_factory=list)
    counter: list[int] = field(default_factory=lambda: [0])

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")


def _settings(doc: Document, raw: Any, path: str) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        doc.error(path, f"must be an object (got {short(raw)})")
        return Settings()
    data = known_keys(raw, model_keys(Settings), path, doc.problems)
    for key, model in SUBMODELS.items():
        if isinstance(data.get(key), dict):
            data[key] = known_keys(data[key], model_keys(model), join_path(path, key), doc.problems)
    if isinstance(data.get("onError"), str):
        data["onError"] = {"action": data["onError"]}
    if data.get("limits") is None:
        data.pop("limits", None)
    settings: Settings = validate_model(Settings, data, path, {}, doc.problems)
    return settings


def _header(doc: Document, raw: dict[str, Any], base: str, default_id: str | None) -> dict[str, Any]:
    """``id``, ``version``, ``name``, ``description``, ``input`` (checked)."""
    fid = raw.get("id", default_id)
    if fid is None:
        doc.error(base, "missing 'id': a flow needs an id such as order-intake")
    elif not isinstance(fid, str) or not FLOW_ID_RE.fullmatch(fid):
        shown = fid[:40] if isinstance(fid, str) else short(fid, 40)
        doc.error(join_path(base, "id"), f"'{shown}' is not a valid flow id: use letters, digits, '-' and '_' "
                                         "(at most 128 characters)")
    version = raw.get("version", 1)
    if isinstance(version, float) and version.is_integer() and abs(version) < 2**53:
        version = int(version)  # JSON has one number type: 2.0 is the whole number 2 (as the JSON Schema says)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        doc.error(join_path(base, "version"), f"must be a whole number >= 1 (got {short(version)})")
        version = 1
    out: dict[str, Any] = {"id": fid if isinstance(fid, str) else "?", "version": version}
    for key in ("name", "description"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            doc.error(join_path(base, key), f"must be a string (got {short(value)})")
            value = None
        out[key] = value
    schema = raw.get("input")
    if schema is not None:
        if not isinstance(schema, dict):
            doc.error(join_path(base, "input"), f"must be a JSON Schema object (got {short(schema)})")
            schema = None
        else:
            found = schema_problems(schema, join_path(base, "input"))
            doc.problems.extend(found)
            schema = None if found else schema
    out["input_schema"] = schema
    return out


def build_flow(doc: Document, raw: Any, base: str, depth: int, default_id: str | None) -> Flow | None:
    """Build one flow document (a dict, or a bare list of steps); None when it has errors."""
    if isinstance(raw, list):
        raw = {"id": default_id, "steps": raw}
    if not isinstance(raw, dict):
        doc.error(base, f"a flow must be an object with id and steps, or a list of steps (got {short(raw)})")
        return None
    if is_wire(raw):
        raw = from_wire(raw)
    errors_before = doc.errors()
    raw = known_keys(raw, TOP_KEYS, base, doc.problems)
    header = _header(doc, raw, base, default_id)
    settings = _settings(doc, raw.get("settings"), join_path(base, "settings"))
    builder = StepBuilder(doc.problems, doc.counter, lambda d, p, n, sid: _child(doc, d, p, n, sid))
    if "steps" not in raw:
        doc.error(base, "missing 'steps': a flow needs a list of steps")
        steps = []
    else:
        steps = builder.steps(raw["steps"], join_path(base, "steps"), depth, allow_empty=False)
    GraphChecker(builder.info, settings, doc.problems).run(steps)
    if doc.errors() > errors_before:
        return None
    return Flow(settings=settings, steps=steps, **header)


def _child(doc: Document, raw: Any, path: str, depth: int, step_id: str) -> dict[str, Any] | None:
    flow = build_flow(doc, raw, path, depth, step_id)
    return flow.to_wire() if flow is not None else None


def is_wire(raw: dict[str, Any]) -> bool:
    """Whether ``raw`` is already a canonical flow (every step has ``kind`` and ``blocks``)."""
    steps = raw.get("steps")
    return (isinstance(steps, list) and bool(steps) and "inputSchema" in raw
            and all(isinstance(s, dict) and "kind" in s and "blocks" in s for s in steps))


def _step_from_wire(step: Any) -> Any:
    if not isinstance(step, dict) or "kind" not in step:
        return step
    out: dict[str, Any] = {"stepId": step.get("id"), "stepType": step.get("kind")}
    for key in ("title", "continueOnError", "skipCondition", "retryPolicy", "timeout", "runLimit", "onError",
                "next", "condition", "execution", "connection", "circuitBreaker"):
        value = step.get(key)
        if value is not None and value is not False:
            out[key] = value
    if isinstance(out.get("onError"), dict):
        out["onError"] = {k: v for k, v in out["onError"].items() if v is not None}
    inp = dict(step.get("input") or {}) if isinstance(step.get("input"), dict) else step.get("input")
    blocks = step.get("blocks")
    if isinstance(inp, dict) and isinstance(blocks, dict):
        for name, sub in blocks.items():
            inp[name] = [_step_from_wire(s) for s in sub] if isinstance(sub, list) else sub
    out["input"] = inp
    return out


def from_wire(raw: dict[str, Any]) -> dict[str, Any]:
    """A canonical flow dict spelled back as a list-style document (so that it is validated like any other)."""
    out = {k: raw[k] for k in ("id", "version", "name", "description") if raw.get(k) is not None}
    if raw.get("inputSchema") is not None:
        out["input"] = raw["inputSchema"]
    settings = raw.get("settings")
    if isinstance(settings, dict):
        out["settings"] = {k: v for k, v in settings.items() if v is not None}
    out["steps"] = [_step_from_wire(s) for s in raw["steps"]]
    return out
