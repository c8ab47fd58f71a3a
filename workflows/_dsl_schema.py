"""``flow_json_schema()``: a JSON Schema (Draft 2020-12) of flow documents in both spellings, for editors.

It describes the shape (keys, types, kinds, nested blocks) so that editors can complete and check flows;
``parse_flow`` checks more (ids, routing targets, templates, per-kind required input keys).
"""

from __future__ import annotations

import copy
from typing import Any

from flowtide.workflows._dsl_models import DEFAULT_LIMITS, MAX_RETRIES, YEAR_S
from flowtide.workflows._dsl_raw import FLOW_ID_RE, STEP_ID_RE
from flowtide.workflows._dsl_steps import RESERVED_IDS
from flowtide.workflows.kinds import ALIASES, KINDS

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


def _block_rule(kind: str, blocks: dict[str, Any]) -> dict[str, Any]:
    names = kind_names(kind)
    cond = {"anyOf": [{"required": [k], "properties": {k: {"enum": names}}} for k in ("stepType", "action")]}
    body = {"type": "object", "properties": blocks}
    return {"if": cond, "then": {"properties": {"input": body, "parameters": body}}}


def _step() -> dict[str, Any]:
    input_schema = _nullable({"type": "object", "description": "the step's input; every string may hold "
                                                               "{{ templates }}"})
    block = _nullable({"$ref": "#/$defs/stepBlock"})
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
            "timeout": _nullable({"type": "number", "exclusiveMinimum": 0, "maximum": YEAR_S,
                                  "description": "seconds for one attempt"}),
            "runLimit": _nullable({"type": "integer", "minimum": -1,
                                   "description": "runs per execution; -1 = unlimited"}),
            "onError": _nullable({"$ref": "#/$defs/onError"}),
            "next": _nullable({"$ref": "#/$defs/targets"}),
            "condition": _nullable({"$ref": "#/$defs/routing"}),
            "execution": _nullable({"enum": ["remote", "local"]}),
        },
        "allOf": [
            {"oneOf": [{"required": ["stepId"]}, {"required": ["id"]}]},
            {"oneOf": [{"required": ["stepType"]}, {"required": ["action"]}]},
            {"not": {"required": ["input", "parameters"]}},
            _block_rule("core.if", {"then": block, "else": block, "condition": {"$ref": "#/$defs/condition"}}),
            _block_rule("core.for-each", {"steps": block}),
        ],
    }


def _models() -> dict[str, Any]:
    count = _nullable({"type": "integer", "minimum": 0, "maximum": MAX_RETRIES})
    millis = _nullable({"type": "number", "minimum": 0})
    actions = ["stop-workflow", "continue-workflow", "retry-step", "retry-workflow"]
    return {
        "retryPolicy": {"type": "object", "additionalProperties": False, "properties": {
            "maxRetries": count, "delayMs": millis, "backoffMultiplier": _nullable({"type": "number", "minimum": 1}),
            "maxDelayMs": millis, "mode": _nullable({"enum": ["smart", "aggressive", "rate-limits-only", "custom"]}),
            "nonRetryableErrorCodes": _nullable({"type": "array", "items": {"type": "string"}})}},
        "onError": {"anyOf": [{"enum": actions}, {"type": "object", "additionalProperties": False, "properties": {
            "action": {"enum": actions}, "maxRetries": count, "next": _nullable({"type": "string"})}}]},
        "routing": {"type": "object", "additionalProperties": False, "required": ["if"], "properties": {
            "if": {"$ref": "#/$defs/condition"}, "then": _nullable({"$ref": "#/$defs/targets"}),
            "else": _nullable({"$ref": "#/$defs/targets"})}},
        "targets": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                    "description": "step id(s); in condition.then/else also stop-workflow / continue-workflow"},
        "condition": {"description": "a JsonLogic object ({\"==\": [\"{{ a.b }}\", true]}) or an expression "
                                     "string (\"{{ a.b }} > 3 and {{ c }} != 'x'\")"},
        "limits": {"type": "object", "additionalProperties": False, "properties": {
            key: {"type": "integer", "minimum": 1, "default": value} for key, value in DEFAULT_LIMITS.items()}
            | {"maxStepExecutions": {"type": "integer", "default": DEFAULT_LIMITS["maxStepExecutions"],
                                     "anyOf": [{"const": -1}, {"minimum": 1, "maximum": 10_000_000}],
                                     "description": "-1: no limit (a deliberately endless run)"},
               "continueAsNewEvents": {"type": "integer", "minimum": 10, "maximum": 40_000,
                                       "default": DEFAULT_LIMITS["continueAsNewEvents"],
                                       "description": "the main run continues as new past this many events"}}},
        "settings": {"type": "object", "additionalProperties": False, "properties": {
            "timeout": _nullable({"type": "number", "exclusiveMinimum": 0, "description": "seconds, whole run"}),
            "retryPolicy": _nullable({"$ref": "#/$defs/retryPolicy"}),
            "onError": _nullable({"$ref": "#/$defs/onError"}),
            "strictTemplates": {"type": "boolean"}, "execution": {"enum": ["remote", "local"]},
            "limits": _nullable({"$ref": "#/$defs/limits"})}},
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
                    "version": {"type": "integer", "minimum": 1},
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
