"""``flow_json_schema()``: a JSON Schema (Draft 2020-12) of flow documents in both spellings, for editors.

It describes the shape (keys, types, kinds, nested blocks) so that editors can complete and check flows;
each kind's input keys and their descriptions come from its declaration in ``workflows.kinds``; retry
policies, error handling, settings, limits and numeric bounds come from the same pydantic models
``parse_flow`` validates with. ``parse_flow`` checks more (ids, routing targets, templates, per-kind input).
"""

from __future__ import annotations

import copy
from typing import Any, get_args

from pydantic import BaseModel

from flowtide.workflows.kinds import ALIASES, FOR_EACH, KINDS, Kind
from flowtide.workflows.language.dsl.models import (
    CircuitBreaker,
    Flow,
    Limits,
    OnError,
    OnErrorAction,
    RetryPolicy,
    Settings,
    Step,
)
from flowtide.workflows.language.dsl.raw import FLOW_ID_RE, STEP_ID_RE
from flowtide.workflows.language.dsl.steps import RESERVED_IDS
from flowtide.workflows.limits import DEFAULT_LIMITS

NULL = {"type": "null"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, NULL], **({"description": schema["description"]} if "description" in schema else {})}


def kind_names(kind: str | None = None) -> list[str]:
    """Every accepted spelling of ``kind`` (or of all kinds): canonical, aliases, ``ns::name``."""
    names = set()
    for name in KINDS if kind is None else [kind]:
        names.add(name)
        names.add(name.replace(".", "::", 1))
    names |= {alias for alias, target in ALIASES.items() if kind is None or target == kind}
    return sorted(names)


# Input keys whose schema says more than the declaration's description (block keys are added by kind).
_TYPED_INPUTS: dict[str, dict[str, Any]] = {
    "core.if": {"condition": {"$ref": "#/$defs/condition"}},
    FOR_EACH: {"concurrency": {"$ref": "#/$defs/loopConcurrency"},
                      "failurePolicy": {"$ref": "#/$defs/failurePolicy"}},
}


def _input_rule(kind: Kind) -> dict[str, Any]:
    """The input keys ``kind`` declares (with their descriptions; nested step lists as blocks), applied to
    the steps written with one of its names. Types only where the language checks them, so the schema
    refuses no more than ``validate`` does."""
    block = _nullable({"$ref": "#/$defs/stepBlock"})
    props = {key: {"description": text} for key, text in kind.inputs.keys}
    props |= {key: {**block, "description": props[key]["description"]} for key in kind.blocks}
    props |= {key: {**schema, "description": props[key]["description"]}
              for key, schema in _TYPED_INPUTS.get(kind.name, {}).items()}
    names = kind_names(kind.name)
    cond = {"anyOf": [{"required": [k], "properties": {k: {"enum": names}}} for k in ("stepType", "action")]}
    body = {"properties": props}  # the step schema already says: an object or null
    return {"if": cond, "then": {"properties": {"input": body, "parameters": body}}}


def _step() -> dict[str, Any]:
    input_schema = _nullable({"type": "object", "description": "the step's input; every string may hold "
                                                               "{{ templates }}"})
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "stepId": {"$ref": "#/$defs/stepId"}, "id": {"$ref": "#/$defs/stepId"},
            "stepType": {"$ref": "#/$defs/kind"}, "action": {"$ref": "#/$defs/kind"},
            "title": _nullable({"type": "string", "description": "shown in timelines; default: the step id"}),
            "input": input_schema, "parameters": input_schema,
            "continueOnError": {"type": "boolean", "description": "absorb a failure (after retries) and go on"},
            "skipCondition": {"$ref": "#/$defs/condition"},
            "retryPolicy": _nullable({"$ref": "#/$defs/retryPolicy"}),
            "timeout": {**_field(Step, "timeout"), "description": "seconds for one attempt"},
            "runLimit": {**_field(Step, "runLimit"), "description": "runs per execution; -1 = unlimited"},
            "onError": _nullable({"$ref": "#/$defs/onError"}),
            "next": _nullable({"$ref": "#/$defs/targets"}),
            "condition": _nullable({"$ref": "#/$defs/routing"}),
            "execution": _nullable({"enum": ["remote", "local"]}),
            "connection": _nullable({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,99}$",
                                     "description": "a connection's name (HTTP, data store, e-mail, LLM steps)"}),
            "circuitBreaker": _nullable({"$ref": "#/$defs/circuitBreaker"}),
        },
        "allOf": [
            {"oneOf": [{"required": ["stepId"]}, {"required": ["id"]}]},
            {"oneOf": [{"required": ["stepType"]}, {"required": ["action"]}]},
            {"not": {"required": ["input", "parameters"]}},
            *(_input_rule(kind) for kind in KINDS.values() if kind.inputs.keys),
        ],
    }


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}
_REFS = {"#/$defs/RetryPolicy": "#/$defs/retryPolicy", "#/$defs/OnError": "#/$defs/onError",
         "#/$defs/Limits": "#/$defs/limits"}


def _clean(node: Any) -> Any:
    """A pydantic schema as plain JSON Schema: bounds pydantic leaves as ``ge``/``le`` (on unions) renamed,
    titles dropped, references pointed at this schema's names."""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "$ref":
            out[key] = _REFS.get(value, value)
            continue
        out[str(_BOUNDS.get(key) or key)] = _clean(value)
    return out


def _model(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    schema.pop("$defs", None)
    return dict(_clean(schema))


def _field(model: type[BaseModel], name: str) -> dict[str, Any]:
    """One field's schema, with the bounds the model validates (``Step`` is recursive: its own ``$defs``)."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    props = schema["properties"] if "properties" in schema else schema["$defs"][model.__name__]["properties"]
    return dict(_clean(props[name]))


def _models() -> dict[str, Any]:
    """``$defs`` built from the models ``parse_flow`` validates with, so schema and validation agree."""
    on_error = _model(OnError)
    on_error.pop("description", None)
    settings = _model(Settings)
    settings["properties"]["limits"] = _nullable({"$ref": "#/$defs/limits"})
    settings["properties"]["circuitBreaker"] = _nullable({"$ref": "#/$defs/circuitBreaker"})
    limits = _model(Limits)
    limits["properties"]["maxStepExecutions"] = {  # -1 or a count: the model's "not 0" is a validator
        "type": "integer", "default": DEFAULT_LIMITS["maxStepExecutions"],
        "anyOf": [{"const": -1}, {"minimum": 1, "maximum": 10_000_000}],
        "description": "-1: no limit (a deliberately endless run)"}
    return {
        "circuitBreaker": _model(CircuitBreaker),
        "loopConcurrency": {"anyOf": [
            {"type": "integer", "minimum": 1}, {"type": "string", "pattern": "\\{\\{"},
            {"type": "object", "additionalProperties": False, "properties": {
                "max": {"type": "integer", "minimum": 1}, "adaptive": {"type": "boolean", "description":
                        "halve on a rate-limited iteration, add one per round of successes"}}}]},
        "failurePolicy": {"type": "object", "additionalProperties": False, "properties": {
            "maxFailures": {"type": "integer", "minimum": 0},
            "maxFailureRatio": {"type": "number", "minimum": 0, "maximum": 1},
            "stopOn": {"type": "array", "items": {"type": "string"},
                       "description": "error codes or classes that stop the loop at once"}}},
        "retryPolicy": _model(RetryPolicy),
        "onError": {"anyOf": [{"enum": list(get_args(OnErrorAction))}, on_error]},
        "routing": {"type": "object", "additionalProperties": False, "required": ["if"], "properties": {
            "if": {"$ref": "#/$defs/condition"}, "then": _nullable({"$ref": "#/$defs/targets"}),
            "else": _nullable({"$ref": "#/$defs/targets"})}},
        "targets": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                    "description": "step id(s); in condition.then/else also stop-workflow / continue-workflow"},
        "condition": {"description": "a JsonLogic object ({\"==\": [\"{{ a.b }}\", true]}) or an expression "
                                     "string (\"{{ a.b }} > 3 and {{ c }} != 'x'\")"},
        "limits": limits,
        "settings": settings,
    }


_SCHEMA: dict[str, Any] | None = None


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of a flow document: an object with ``id`` and ``steps``, or a bare list of steps."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://flowtide.dev/schemas/flow.schema.json",
            "title": "Flowtide flow",
            "description": "A Flowtide flow: list style (stepId/stepType/input) or graph style "
                           "(id/action/parameters/next/condition).",
            "if": {"type": "array"}, "then": {"$ref": "#/$defs/stepList"}, "else": {"$ref": "#/$defs/flow"},
            "$defs": {
                "flow": {"type": "object", "additionalProperties": False, "required": ["id", "steps"], "properties": {
                    "$schema": {"type": "string"},
                    "id": {"type": "string", "pattern": f"^{FLOW_ID_RE.pattern}$"},
                    "version": _field(Flow, "version"),
                    "name": _nullable({"type": "string"}), "description": _nullable({"type": "string"}),
                    "input": _nullable({"type": "object", "description": "JSON Schema of the trigger payload"}),
                    "settings": _nullable({"$ref": "#/$defs/settings"}),
                    "steps": {"$ref": "#/$defs/stepList"}}},
                "stepList": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
                "stepBlock": {"type": "array", "items": {"$ref": "#/$defs/step"}},
                "step": _step(),
                "stepId": {"type": "string", "pattern": f"^{STEP_ID_RE.pattern}$",
                           "not": {"enum": sorted(RESERVED_IDS)}},
                "kind": {"enum": kind_names(), "description": "the step kind"},
                **_models(),
            },
        }
    return copy.deepcopy(_SCHEMA)
