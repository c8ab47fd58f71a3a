"""The flow language loader: both spellings, the canonical wire dict, every validation rule, the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from flowtide.client.flowfiles import load_flow_file
from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language.dsl import (
    flow_json_schema,
    load_flow_text,
    parse_flow,
    validate_payload,
)
from flowtide.workflows.language.dsl.flow import from_wire
from tests.support.steps import http

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*")  # flows; their *.test.yaml files are test cases
                  if p.suffix in (".json", ".yaml", ".yml") and ".test." not in p.name)
SEEDS = sorted((ROOT / "examples" / "seeds").glob("*"))


def problems_of(doc: Any, source: str = "") -> list[Problem]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(doc, source)
    return info.value.problems


def errors_of(doc: Any) -> dict[str, str]:
    return {p.path: p.message for p in problems_of(doc) if p.severity == "error"}


def warnings_of(doc: Any) -> dict[str, str]:
    return {p.path: p.message for p in parse_flow(doc).warnings}


# ---- examples and seeds -------------------------------------------------------------------------------
def test_every_seed_recipe_and_example_is_there() -> None:
    names = {p.stem for p in SEEDS}
    assert {"003-fallback-lookup", "003-process-items", "003-validate-input", "003-charge-card",
            "003-call-partner-api", "004-error-strategies", "004-condition-stop", "004-condition-mixed",
            "004-important-operation", "004-timeouts", "004-run-limit-conflict", "004-loop-files"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_is_valid_for_the_schema_and_the_loader(path: Path) -> None:
    text = path.read_text()
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    jsonschema.Draft202012Validator(flow_json_schema()).validate(doc)
    flow = load_flow_file(path)
    json.dumps(flow.to_wire())  # the wire dict is plain JSON
    expected = 1 if path.stem == "004-run-limit-conflict" else 0
    assert len(flow.warnings) == expected, flow.warnings


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(flow_json_schema())


def test_run_limit_seed_warns_with_the_seed_wording() -> None:
    [warning] = load_flow_file(ROOT / "examples" / "seeds" / "004-run-limit-conflict.yaml").warnings
    assert warning.path == "steps[1].runLimit" and warning.severity == "warning"
    assert "will not retry" in warning.message and "has reached its run limit" in warning.message


# ---- the wire dict -------------------------------------------------------------------------------------
def test_list_style_wire_moves_nested_steps_into_blocks_and_fills_defaults() -> None:
    flow = parse_flow([
        {"stepId": "loop", "stepType": "core.for-each", "input": {"items": [1], "steps": [http("get")]}},
        {"stepId": "check", "stepType": "core.if", "input": {"condition": "{{ loop.count }} > 0",
                                                            "then": [http("yes")]}},
    ], source="flows/My Flow.yaml")
    wire = flow.to_wire()
    assert wire["id"] == "my-flow" and wire["version"] == 1 and wire["inputSchema"] is None
    assert wire["settings"] == {"timeout": None, "retryPolicy": None, "onError": None, "strictTemplates": False,
                                "execution": None, "limits": {"outputBytes": 262144, "httpResponseBytes": 262144,
                                                                  "maxStepExecutions": 10000, "loopBatchSize": 500,
                                                                  "continueAsNewEvents": 8000}}
    loop, check = wire["steps"]
    assert loop["input"] == {"items": [1]} and [s["id"] for s in loop["blocks"]["steps"]] == ["get"]
    assert check["input"] == {"condition": "{{ loop.count }} > 0"}
    assert [s["id"] for s in check["blocks"]["then"]] == ["yes"] and check["blocks"]["else"] == []
    assert loop["blocks"]["steps"][0] == {
        "id": "get", "kind": "core.http", "title": "get", "input": {"url": "http://127.0.0.1/x"}, "blocks": {},
        "continueOnError": False, "skipCondition": None, "retryPolicy": None, "timeout": None, "runLimit": None,
        "onError": None, "next": None, "condition": None, "execution": None}


def test_graph_style_wire() -> None:
    wire = parse_flow({"id": "g", "settings": {"timeout": 60, "limits": {"loopBatchSize": 50}}, "steps": [
        {"id": "a", "action": "http::request", "parameters": {"url": "http://127.0.0.1"}, "timeout": 5,
         "runLimit": 3, "retryPolicy": {"maxRetries": 2, "mode": "aggressive"},
         "onError": {"action": "continue-workflow"}, "next": "b"},
        {"id": "b", "action": "template::validate", "title": "Check", "parameters": {"schema": {}, "data": 1},
         "condition": {"if": "{{ b.valid }}", "then": "c", "else": ["stop-workflow"]}},
        {"id": "c", "action": "core.set-variable", "parameters": {"x": 1}, "onError": "retry-workflow"},
    ]}).to_wire()
    a, b, c = wire["steps"]
    assert wire["settings"]["timeout"] == 60.0 and wire["settings"]["limits"]["loopBatchSize"] == 50
    assert a["kind"] == "core.http" and a["timeout"] == 5.0 and a["runLimit"] == 3 and a["next"] == ["b"]
    assert a["continueOnError"] is True
    assert a["onError"] == {"action": "continue-workflow", "maxRetries": None, "next": None}
    assert a["retryPolicy"] == {"maxRetries": 2, "mode": "aggressive"}
    assert b["kind"] == "core.validate" and b["title"] == "Check"
    assert b["condition"] == {"if": "{{ b.valid }}", "then": ["c"], "else": ["stop-workflow"]}
    assert c["onError"] == {"action": "retry-workflow", "maxRetries": None, "next": None}


def test_to_wire_is_a_fresh_copy_and_round_trips() -> None:
    flow = load_flow_file(ROOT / "examples" / "demo.yaml")
    wire = flow.to_wire()
    wire["steps"][0]["input"]["url"] = "changed"
    assert flow.to_wire()["steps"][0]["input"]["url"] != "changed"
    assert parse_flow(from_wire(flow.to_wire())).to_wire() == flow.to_wire()


def test_sub_flow_inline_document_or_wire_becomes_canonical() -> None:
    child = {"id": "child", "steps": [http("inner")]}
    for inline in (child, parse_flow(child).to_wire(), [http("inner")]):
        wire = parse_flow({"id": "p", "steps": [
            {"stepId": "call", "stepType": "core.sub-flow", "input": {"flow": inline}}]}).to_wire()
        assert wire["steps"][0]["input"]["flow"]["steps"][0]["kind"] == "core.http"
    errors = errors_of({"id": "p", "steps": [{"stepId": "call", "stepType": "core.sub-flow",
                                             "input": {"flow": {"id": "c", "steps": [{"stepId": "x"}]}}}]})
    assert "missing 'stepType'" in errors["steps[0].input.flow.steps[0]"]


# ---- every problem at once ---------------------------------------------------------------------------
def test_a_broken_flow_lists_every_problem_with_its_path() -> None:
    doc = {"id": "broken", "versoin": 2, "settings": {"retryPolicy": {"mode": "sometimes"}}, "steps": [
        {"stepId": "fetch", "stepType": "core.htp", "input": {"url": "{{ initial.id | nope }}"}, "timeout": -1},
        {"stepId": "fetch", "stepType": "core.http", "input": {}, "runLimit": -5, "nxt": "x"},
        {"stepId": "branch", "stepType": "core.if", "input": {"condition": "{{ fetch.ok }} ==", "then": [
            {"stepId": "$inner", "stepType": "core.delay", "input": {}}]}},
        {"stepId": "later", "stepType": "core.return", "skipCondition": {"nope": [1]},
         "onError": {"action": "retry-step", "next": "nowhere"}},
    ]}
    errors = errors_of(doc)
    expected = {
        "versoin": "did you mean 'version'",
        "settings.retryPolicy.mode": "must be one of smart",
        "steps[0].stepType": "unknown step kind 'core.htp' (did you mean 'core.http'?)",
        "steps[0].input.url": "unknown filter 'nope'",
        "steps[0].timeout": "must be a positive number",
        "steps[1].stepId": "duplicate step id 'fetch'",
        "steps[1].input": "needs 'url'",
        "steps[1].runLimit": "-1 = unlimited",
        "steps[1].nxt": "did you mean 'next'",
        "steps[2].input.condition": "ends where a value was expected",
        "steps[2].input.then[0].stepId": "'$' is reserved",
        "steps[2].input.then[0].input": "needs 'seconds' or 'until'",
        "steps[3].skipCondition": "unknown operator 'nope'",
        "steps[3].onError.next": "'nowhere' names no step",
    }
    for path, fragment in expected.items():
        assert path in errors, (path, sorted(errors))
        assert fragment in errors[path], (path, errors[path])
    assert len(errors) == len(expected), sorted(errors)


def test_errors_come_with_the_warnings_and_the_source() -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow({"id": "x", "steps": [http("a", "{{ later.x }}"), http("b", timeout="1")]}, "flows/x.json")
    assert str(info.value).startswith("flows/x.json: 1 error(s): steps[1].timeout")
    assert [p.severity for p in info.value.problems] == ["error", "warning"]


# ---- rules, one by one ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("step", "path", "fragment"), [
    ({"stepId": "a", "stepType": "core.http", "input": {"url": "u"}, "retry": 1}, "steps[0].retry", "unknown key"),
    ({"stepId": "a", "id": "b", "stepType": "core.http", "input": {"url": "u"}}, "steps[0].id", "two spellings"),
    ({"stepId": "a", "stepType": "core.http", "input": {"url": "u"}, "retryPolicy": {"maxRetires": 1}},
     "steps[0].retryPolicy.maxRetires", "did you mean 'maxRetries'"),
    ({"stepId": "a", "stepType": "core.http", "input": {"url": "u"}, "onError": {"acton": "retry-step"}},
     "steps[0].onError.acton", "did you mean 'action'"),
    ({"stepId": "a", "stepType": "core.delay", "input": {"seconds": 1, "secnds": 2}}, "steps[0].input.secnds",
     "did you mean 'seconds'"),
    ({"stepId": "a", "stepType": "core.http"}, "steps[0]", "needs 'url'"),
    ({"stepId": "a", "stepType": "core.code", "input": {}}, "steps[0].input", "needs 'script'"),
    ({"stepId": "a", "stepType": "core.for-each", "input": {"steps": []}}, "steps[0].input", "needs 'items'"),
    ({"stepId": "a", "stepType": "core.for-each", "input": {"items": []}}, "steps[0].input", "needs 'steps'"),
    ({"stepId": "a", "stepType": "core.if", "input": {}}, "steps[0].input", "needs 'condition'"),
    ({"stepId": "a", "stepType": "core.delay", "input": {}}, "steps[0].input", "'seconds' or 'until'"),
    ({"stepId": "a", "stepType": "core.wait-for-signal", "input": {}}, "steps[0].input", "'signal' or 'name'"),
    ({"stepId": "a", "stepType": "core.sub-flow", "input": {}}, "steps[0].input", "'flow' or 'flowFile'"),
    ({"stepId": "a", "stepType": "core.sub-flow", "input": {"flow": "x.yaml"}}, "steps[0].input.flow", "flowFile"),
    ({"stepId": "a", "stepType": "core.validate", "input": {"data": 1}}, "steps[0].input", "needs 'schema'"),
    ({"stepId": "a", "stepType": "core.validate", "input": {"schema": {"type": "strnig"}}},
     "steps[0].input.schema.type", "not a valid JSON Schema"),
    ({"stepId": "a", "stepType": "core.return", "input": {"outptu": 1}}, "steps[0].input.outptu", "'output'"),
    ({"stepId": "Bad Id", "stepType": "core.return"}, "steps[0].stepId", "not a valid step id"),
    ({"stepId": "initial", "stepType": "core.return"}, "steps[0].stepId", "reserved"),
    ({"stepId": 5, "stepType": "core.return"}, "steps[0].stepId", "must be a string"),
    ({"stepType": "core.return"}, "steps[0]", "missing 'stepId'"),
    ({"stepId": "a", "stepType": "core.return", "timeout": 0}, "steps[0].timeout", "positive number"),
    ({"stepId": "a", "stepType": "core.return", "timeout": True}, "steps[0].timeout", "positive number"),
    ({"stepId": "a", "stepType": "core.return", "runLimit": 1.5}, "steps[0].runLimit", "whole number >= -1"),
    ({"stepId": "a", "stepType": "core.return", "retryPolicy": {"mode": "smartest"}}, "steps[0].retryPolicy.mode",
     "smart, aggressive, rate-limits-only, custom"),
    ({"stepId": "a", "stepType": "core.return", "retryPolicy": {"maxRetries": -1}},
     "steps[0].retryPolicy.maxRetries", "from 0 to 100"),
    ({"stepId": "a", "stepType": "core.return", "onError": {"action": "explode"}}, "steps[0].onError.action",
     "stop-workflow, continue-workflow"),
    ({"stepId": "a", "stepType": "core.return", "continueOnError": "yes"}, "steps[0].continueOnError", "true or false"),
    ({"stepId": "a", "stepType": "core.return", "execution": "far"}, "steps[0].execution", "remote or local"),
    ({"stepId": "a", "stepType": "core.return", "title": 3}, "steps[0].title", "must be a string"),
    ({"stepId": "a", "stepType": "core.return", "input": [1]}, "steps[0].input", "must be an object"),
    ({"stepId": "a", "stepType": "core.return", "input": {"output": "{{ }}"}}, "steps[0].input.output",
     "empty expression"),
    ({"stepId": "a", "stepType": "core.return", "skipCondition": "{{ a }} =="}, "steps[0].skipCondition",
     "ends where a value"),
    ({"stepId": "a", "stepType": "core.return", "condition": {"then": "a"}}, "steps[0].condition.if",
     "missing 'if'"),
    ({"stepId": "a", "stepType": "core.return", "condition": {"if": "{{ a }} >", "then": "a"}},
     "steps[0].condition.if", "ends where a value"),
    ({"stepId": "a", "stepType": "core.return", "next": "stop-workflow"}, "steps[0].next",
     "only allowed in condition"),
    ({"stepId": "a", "stepType": 7}, "steps[0].stepType", "must be a string"),
    ("just text", "steps[0]", "must be an object"),
])
def test_step_rule(step: Any, path: str, fragment: str) -> None:
    errors = errors_of({"id": "f", "steps": [step]})
    assert path in errors, sorted(errors)
    assert fragment in errors[path]


@pytest.mark.parametrize(("doc", "path", "fragment"), [
    ({"steps": [http("a")]}, "", "missing 'id'"),
    ({"id": "a b", "steps": [http("a")]}, "id", "not a valid flow id"),
    ({"id": "f"}, "", "missing 'steps'"),
    ({"id": "f", "steps": []}, "steps", "at least one step"),
    ({"id": "f", "steps": {}}, "steps", "must be a list of steps"),
    ({"id": "f", "version": 0, "steps": [http("a")]}, "version", "whole number >= 1"),
    ({"id": "f", "name": 3, "steps": [http("a")]}, "name", "must be a string"),
    ({"id": "f", "input": {"type": "objekt"}, "steps": [http("a")]}, "input.type", "not a valid JSON Schema"),
    ({"id": "f", "input": [], "steps": [http("a")]}, "input", "JSON Schema object"),
    ({"id": "f", "settings": {"timout": 3}, "steps": [http("a")]}, "settings.timout", "did you mean 'timeout'"),
    ({"id": "f", "settings": {"limits": {"outputBytes": 10}}, "steps": [http("a")]}, "settings.limits.outputBytes",
     "from 1024"),
    ({"id": "f", "settings": {"limits": {"maxSteps": 10}}, "steps": [http("a")]}, "settings.limits.maxSteps",
     "unknown key"),
    ({"id": "f", "settings": {"execution": "moon"}, "steps": [http("a")]}, "settings.execution", "remote or local"),
    ("text", "", "a flow must be an object"),
])
def test_flow_rule(doc: Any, path: str, fragment: str) -> None:
    errors = errors_of(doc)
    assert path in errors, sorted(errors)
    assert fragment in errors[path]


def test_duplicate_ids_across_nested_blocks() -> None:
    errors = errors_of({"id": "f", "steps": [
        {"stepId": "a", "stepType": "core.if", "input": {"condition": True, "then": [http("b")],
                                                          "else": [http("b")]}},
        {"stepId": "loop", "stepType": "core.for-each", "input": {"items": [1], "steps": [http("a")]}}]})
    assert "first used at steps[0].input.then[0]" in errors["steps[0].input.else[0].stepId"]
    assert "duplicate step id 'a'" in errors["steps[1].input.steps[0].stepId"]


def test_routing_targets() -> None:
    base = [{"id": "a", "action": "core.set-variable", "parameters": {"x": 1},
             "condition": {"if": True, "then": ["b", "stop-workflow"], "else": "continue-workflow"}},
            {"id": "b", "action": "core.set-variable", "parameters": {"x": 1}}]
    assert parse_flow({"id": "f", "steps": base}).warnings == []
    errors = errors_of({"id": "f", "steps": [{**base[0], "next": ["b", "bb", "inner"]}, base[1],
                                             {"id": "c", "action": "core.if", "next": "a",
                                              "parameters": {"condition": True, "then": [http("inner")]}}]})
    assert "'bb' names no step (did you mean 'b'?)" in errors["steps[0].next[1]"]
    assert "in another list of steps" in errors["steps[0].next[2]"]


def test_unreachable_steps_warn_in_graph_style_only() -> None:
    warnings = warnings_of({"id": "f", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "c"},
        {"id": "b", "action": "core.set-variable", "parameters": {"x": 1}},
        {"id": "c", "action": "core.set-variable", "parameters": {"x": 1}, "onError": {"next": "b"}}]})
    assert warnings == {}
    warnings = warnings_of({"id": "f", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "c"},
        {"id": "b", "action": "core.set-variable", "parameters": {"x": 1}},
        {"id": "c", "action": "core.set-variable", "parameters": {"x": 1}}]})
    assert "step 'b' is never reached" in warnings["steps[1]"]
    assert warnings_of({"id": "f", "steps": [http("a"), http("b")]}) == {}


def test_cycles_without_run_limit_warn() -> None:
    cycle = [{"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "b"},
             {"id": "b", "action": "core.set-variable", "parameters": {"y": 1}, "next": "a"}]
    warnings = warnings_of({"id": "f", "steps": cycle})
    assert "steps a -> b -> a form a cycle" in warnings["steps[0]"]
    assert warnings_of({"id": "f", "steps": [cycle[0], {**cycle[1], "runLimit": 5}]}) == {}
    assert "form a cycle" in warnings_of({"id": "f", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "a"}]})["steps[0]"]
    back = warnings_of({"id": "f", "steps": [http("a"), http("b", onError={"next": "a"})]})
    assert "form a cycle" in back["steps[0]"]


@pytest.mark.parametrize(("step", "warned"), [
    ({"runLimit": 1, "onError": {"action": "retry-step", "maxRetries": 3}}, True),
    ({"runLimit": 4, "onError": {"action": "retry-step", "maxRetries": 3}}, False),
    ({"runLimit": -1, "onError": {"action": "retry-step", "maxRetries": 3}}, False),
    ({"runLimit": 2, "retryPolicy": {"maxRetries": 2}}, True),
    ({"runLimit": 3, "retryPolicy": {"maxRetries": 2}}, False),
    ({"runLimit": 1}, False),
])
def test_run_limit_conflicts(step: dict[str, Any], warned: bool) -> None:
    warnings = warnings_of({"id": "f", "steps": [http("a", **step)]})
    assert ("steps[0].runLimit" in warnings) is warned


def test_retry_actions_without_max_retries_warn() -> None:
    warnings = warnings_of({"id": "f", "steps": [http("a", onError={"action": "retry-step"}),
                                                 http("b", onError="retry-workflow")]})
    assert "never retries" in warnings["steps[0].onError.action"]
    assert "never retries" in warnings["steps[1].onError.action"]


def test_references_to_steps_that_cannot_have_run_warn() -> None:
    warnings = warnings_of({"id": "f", "steps": [
        http("first", "{{ second.body }}"),
        http("second", "{{ first.body }}/{{ initial.id }}/{{ $run.id }}/{{ vars.x }}/{{ $errors | size }}"),
        {"stepId": "branch", "stepType": "core.if", "input": {
            "condition": "{{ second.status }} == 200",
            "then": [http("in-then", "{{ branch.x }}")], "else": [http("in-else", "{{ in-then.body }}")]}},
        {"stepId": "loop", "stepType": "core.for-each", "input": {
            "items": [1], "steps": [http("in-loop", "{{ $item }}/{{ in-then.body }}")]}},
        http("after", "{{ in-then.body }}/{{ in-loop.body }}/{{ loop.count }}/{{ $item }}/{{ secnod.x }}"),
    ]})
    assert "cannot have run before it" in warnings["steps[0].input.url"]
    assert "steps[1].input.url" not in warnings
    assert "reads step 'branch'" in warnings["steps[2].input.then[0].input.url"]
    assert "reads step 'in-then'" in warnings["steps[2].input.else[0].input.url"]
    assert "steps[3].input.steps[0].input.url" not in warnings
    after = [p.message for p in parse_flow({"id": "f", "steps": [
        {"stepId": "loop", "stepType": "core.for-each", "input": {"items": [1], "steps": [http("in-loop")]}},
        http("after", "{{ in-loop.body }}/{{ $item }}/{{ secnod.x }}")]}).warnings]
    assert any("reads step 'in-loop'" in m for m in after)
    assert any("'$item' is only set inside a for-each" in m for m in after)
    assert any("'secnod' is neither a step id" in m for m in after)


def test_graph_references_follow_the_routes() -> None:
    flow = parse_flow({"id": "f", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "c",
         "condition": {"if": "{{ a.x }} == 1", "then": "b"}},
        {"id": "b", "action": "core.set-variable", "parameters": {"y": "{{ a.x }}/{{ c.z }}"}},
        {"id": "c", "action": "core.set-variable", "parameters": {"z": "{{ a.x }}"}, "next": "b"}]})
    assert [w.path for w in flow.warnings] == []
    flow = parse_flow({"id": "f", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": "{{ b.y }}"}, "next": "b"},
        {"id": "b", "action": "core.set-variable", "parameters": {"y": 1}}]})
    assert [w.path for w in flow.warnings] == ["steps[0].parameters.x"]


def test_graph_loop_body_may_read_item() -> None:
    flow = load_flow_file(ROOT / "examples" / "seeds" / "004-loop-files.yaml")
    assert flow.warnings == []
    assert flow.to_wire()["steps"][0]["blocks"] == {} and flow.to_wire()["steps"][0]["next"] == ["download-file"]


# ---- caps ----------------------------------------------------------------------------------------------
def test_document_size_cap() -> None:
    errors = errors_of({"id": "f", "steps": [http("a", "x" * 1_100_000)]})
    assert "larger than 1024 KiB" in errors[""]
    with pytest.raises(FlowValidationError, match="larger than"):
        load_flow_text("x" * 1_100_000, "big.yaml")


def test_step_count_cap() -> None:
    errors = errors_of({"id": "f", "steps": [{"stepId": f"s{i}", "stepType": "core.return"} for i in range(5001)]})
    assert errors == {"steps[5000]": "the flow has more than 5000 steps"}


def test_step_nesting_cap() -> None:
    step: dict[str, Any] = http("leaf")
    for i in range(40):
        step = {"stepId": f"if{i}", "stepType": "core.if", "input": {"condition": True, "then": [step]}}
    errors = errors_of({"id": "f", "steps": [step]})
    assert any("steps nest deeper than 32 levels" in m for m in errors.values())


def test_json_depth_cap_and_non_json_values() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = {"a": deep}
    assert "nests deeper than 160" in errors_of({"id": "f", "steps": [http("a", deep)]}).popitem()[1]
    errors = errors_of({"id": "f", "steps": [{"stepId": "a", "stepType": "core.return",
                                             "input": {"x": {1, 2}, "y": float("nan")}}]})
    assert "set is not JSON data" in errors["steps[0].input.x"]
    assert "finite" in errors["steps[0].input.y"]


# ---- text, files, payloads ------------------------------------------------------------------------------
def test_syntax_errors_with_line_and_column() -> None:
    with pytest.raises(FlowValidationError, match=r"bad.json: 1 error\(s\): invalid JSON at line 2 column 1"):
        load_flow_text('{"id": "x",\n}', "bad.json")
    with pytest.raises(FlowValidationError, match="invalid YAML at line 3 column 9: mapping values"):
        load_flow_text("id: x\nsteps:\n  - a: b: c\n", "bad.yaml")
    with pytest.raises(FlowValidationError, match="invalid JSON"):
        load_flow_text('{"id": NaN}', "x.json")
    with pytest.raises(FlowValidationError, match="empty"):
        load_flow_text("  \n", "x.yaml")


def test_yaml_features_are_tamed() -> None:
    text = "id: y\nsteps:\n- stepId: w\n  stepType: core.delay\n  input: {until: 2030-01-02}\n"
    flow = load_flow_text(text, "y.yaml")
    assert flow.to_wire()["steps"][0]["input"] == {"until": "2030-01-02"}
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(FlowValidationError, match="larger than"):
        load_flow_text(bomb, "bomb.yaml")
    with pytest.raises(FlowValidationError, match="nests deeper"):
        load_flow_text("&a [*a]", "cycle.yaml")


def test_load_flow_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FlowValidationError, match="file not found"):
        load_flow_file(tmp_path / "missing.yaml")
    with pytest.raises(FlowValidationError, match="is a directory"):
        load_flow_file(tmp_path)
    (tmp_path / "latin.yaml").write_bytes(b"id: \xff\n")
    with pytest.raises(FlowValidationError, match="not UTF-8"):
        load_flow_file(tmp_path / "latin.yaml")
    (tmp_path / "ok.json").write_text(json.dumps([http("a")]))
    assert load_flow_file(tmp_path / "ok.json").id == "ok"


def test_validate_payload_reports_every_mismatch_with_its_path() -> None:
    flow = parse_flow({"id": "f", "input": {
        "type": "object", "required": ["customerId", "items"],
        "properties": {"customerId": {"type": "string"},
                       "items": {"type": "array", "items": {"type": "object", "required": ["id"]}}}},
        "steps": [http("a")]})
    problems = validate_payload(flow, {"customerId": 7, "items": [{"id": 1}, {}, {"x": 1}]})
    assert [(p.path, p.message) for p in problems] == [
        ("$.customerId", "7 is not of type 'string'"),
        ("$.items[1]", "'id' is a required property"), ("$.items[2]", "'id' is a required property")]
    assert [p.path for p in validate_payload(flow, {})] == ["$", "$"]
    assert validate_payload(flow, {"customerId": "c", "items": []}) == []
    assert validate_payload(parse_flow([http("a")]), {"anything": 1}) == []


def test_code_aliases_name_the_language_unless_the_input_does():
    flow = parse_flow({"id": "langs", "steps": [
        {"id": "js", "action": "code::javascript", "parameters": {"script": "return 1"}},
        {"id": "py", "action": "code::python", "parameters": {"script": "return 1"}},
        {"id": "explicit", "action": "code::javascript", "parameters": {"script": "return 1", "language": "python"}},
        {"id": "plain", "action": "core.code", "parameters": {"script": "return 1"}}]})
    langs = {s["id"]: s["input"].get("language") for s in flow.to_wire()["steps"]}
    assert langs == {"js": "javascript", "py": "python", "explicit": "python", "plain": None}


def test_a_step_kind_of_the_wrong_type_is_a_problem_with_its_path():
    with pytest.raises(FlowValidationError) as info:
        parse_flow({"id": "bad-kind", "steps": [{"id": "a", "action": ["code::javascript"]}]})
    assert [(p.path, "must be a string" in p.message) for p in info.value.problems] == [("steps[0].action", True)]


def test_a_duplicate_id_is_one_error_not_also_a_cycle():
    with pytest.raises(FlowValidationError) as info:
        parse_flow({"id": "dup", "steps": [
            {"stepId": "a", "stepType": "core.set-variable", "input": {"x": 1}},
            {"stepId": "b", "stepType": "core.set-variable", "input": {"x": 2}},
            {"stepId": "a", "stepType": "core.set-variable", "input": {"x": 3}}]})
    messages = [p.message for p in info.value.problems]
    assert any("duplicate step id 'a'" in m for m in messages)
    assert not any("cycle" in m for m in messages), messages


def test_run_limit_warning_counts_on_error_retries_of_every_action_but_retry_workflow():
    def warnings(action: str) -> list[str]:
        flow = parse_flow({"id": "rl", "steps": [{"stepId": "call", "stepType": "core.http", "runLimit": 2,
                                                  "retryPolicy": {"maxRetries": 0},
                                                  "onError": {"action": action, "maxRetries": 3},
                                                  "input": {"url": "http://127.0.0.1/x"}}]})
        return [w.message for w in flow.warnings if "will not retry" in w.message]
    assert warnings("stop-workflow") and warnings("continue-workflow") and warnings("retry-step")
    assert warnings("retry-workflow") == []


def test_on_error_retries_times_a_retry_policy_is_a_warning_that_names_the_product():
    flow = parse_flow({"id": "product", "steps": [
        {"stepId": "a", "stepType": "core.http", "input": {"url": "https://x.test"},
         "retryPolicy": {"maxRetries": 2}, "onError": {"action": "retry-step", "maxRetries": 3}},
        {"stepId": "b", "stepType": "core.http", "input": {"url": "https://x.test"},
         "onError": {"action": "retry-step", "maxRetries": 3}}]})
    warnings = [w for w in flow.warnings if "calls in all" in w.message]
    assert [w.path for w in warnings] == ["steps[0].onError"]
    assert "up to 12 calls" in warnings[0].message


def test_literal_values_a_step_would_refuse_are_reported_by_validate():
    with pytest.raises(FlowValidationError) as err:
        parse_flow({"id": "literal", "steps": [
            {"stepId": "h", "stepType": "crypto.hash", "input": {"algorithm": "shake_128", "data": "x"}},
            {"stepId": "d", "stepType": "core.delay", "input": {"seconds": 1e15}},
            {"stepId": "w", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": -1}},
            {"stepId": "t", "stepType": "core.delay", "input": {"seconds": "{{ initial.s }}"}}]})
    assert [p.path for p in err.value.problems if p.severity == "error"] == [
        "steps[0].input.algorithm", "steps[1].input.seconds", "steps[2].input.timeout"]


def test_a_max_delay_below_the_first_delay_is_a_warning():
    flow = parse_flow({"id": "delays", "steps": [{"stepId": "a", "stepType": "core.http", "input": {
        "url": "https://x.test"}, "retryPolicy": {"delayMs": 500, "maxDelayMs": 10}}]})
    assert [w.path for w in flow.warnings] == ["steps[0].retryPolicy.maxDelayMs"]
# ---- long-running flows --------------------------------------------------------------------------------
def _limited(**limits: Any) -> dict[str, Any]:
    return {"id": "poller", "settings": {"limits": limits}, "steps": [
        {"id": "poll", "action": "core.delay", "parameters": {"seconds": 60}, "next": "poll"}]}


def test_max_step_executions_minus_one_is_allowed_and_validate_explains_it() -> None:
    flow = parse_flow(_limited(maxStepExecutions=-1, continueAsNewEvents=50))
    assert flow.to_wire()["settings"]["limits"]["maxStepExecutions"] == -1
    words = {w.path: w.message for w in flow.warnings}
    assert "nothing stops a run that keeps looping" in words["settings.limits.maxStepExecutions"]
    assert "schedule" in words["settings.limits.maxStepExecutions"]
    assert "never stops (maxStepExecutions is -1)" in words["steps[0]"]
    assert not list(jsonschema.Draft202012Validator(flow_json_schema()).iter_errors(
        _limited(maxStepExecutions=-1, continueAsNewEvents=50)))


@pytest.mark.parametrize(("limits", "words"), [
    ({"maxStepExecutions": 0}, "or -1 (no limit)"), ({"maxStepExecutions": -2}, "or -1 (no limit)"),
    ({"continueAsNewEvents": 5}, "from 10 to 40000"), ({"continueAsNewEvents": 50_000}, "from 10 to 40000")])
def test_bad_long_run_limits_are_refused_by_validate_and_the_schema(limits: dict[str, Any], words: str) -> None:
    with pytest.raises(FlowValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_flow(_limited(**limits))
    assert list(jsonschema.Draft202012Validator(flow_json_schema()).iter_errors(_limited(**limits)))
