"""Property tests: 10,000 generated flow documents per run, plus hostile templates and conditions.

Documents: 100 valid + 150 mutated ones from hypothesis strategies, 3,000 valid + 5,250 mutated ones from a
seeded generator (4-5 per example: far cheaper to draw), 1,500 raw texts (JSON, YAML, cut, hostile).
Mutations delete keys, put wrong types, random unicode, huge strings and deep nesting, add unknown keys and
duplicate steps.

The loader may only ever raise ``FlowValidationError`` (never a crash, never an "internal" error), templates
and conditions only ``TemplateError``, and every input is handled in under a second (hypothesis deadline).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtide.workflows.errors import FlowValidationError, TemplateError
from flowtide.workflows.language.conditions import check_syntax as condition_syntax
from flowtide.workflows.language.conditions import evaluate
from flowtide.workflows.language.dsl import flow_json_schema, load_flow_text, parse_flow
from flowtide.workflows.language.dsl.flow import from_wire
from flowtide.workflows.language.templates import check_syntax, find_templates, references, render

# A failing example names its seed (``seed=123``): ``random.Random(seed)`` rebuilds exactly what it generated.
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def budget(examples: int) -> settings:
    """``examples`` inputs, each within one second."""
    return settings(max_examples=examples, deadline=1000, suppress_health_check=list(HealthCheck))


SCHEMA = jsonschema.Draft202012Validator(flow_json_schema())
SCOPE: dict[str, Any] = {"initial": {"id": 7, "name": "ann", "items": [1, 2, 3], "nested": {"a-b": [{"c": None}]}},
                         "$errors": [{"code": "X"}], "$item": {"id": 1}, "$index": 0, "vars": {"v": "x"},
                         "s0": {"status": 200, "body": {"ok": True}, "$meta": {"success": True}}}

# ---- valid documents -------------------------------------------------------------------------------------
EXPRESSIONS = ["initial.id", "initial.name | upcase", "$errors | size", "$errors[0].code", "initial.items[-1]",
               "initial.nested[\"a-b\"][0].c | default: 'x'", "vars.v | append: '!'", "initial.items | join: ','",
               "$run.id", "initial.id | plus: 1 | times: 2", "initial.name | truncate: 2, ''"]
TEXT = st.text(alphabet="abc -/:?=é", max_size=8)
TEMPLATE = st.builds(lambda a, e, b: f"{a}{{{{ {e} }}}}{b}", TEXT, st.sampled_from(EXPRESSIONS), TEXT)
VALUE = st.one_of(TEXT, TEMPLATE, st.integers(-5, 5), st.booleans(), st.none())
CONDITIONS = st.one_of(
    st.builds(lambda e, v: {"==": [f"{{{{ {e} }}}}", v]}, st.sampled_from(EXPRESSIONS), VALUE),
    st.builds(lambda e, op, n: f"{{{{ {e} }}}} {op} {n}", st.sampled_from(EXPRESSIONS),
              st.sampled_from(["==", "!=", "<", ">=", "==="]), st.integers(0, 9)),
    st.just({"and": [{"!!": "{{ initial.id }}"}, {"in": ["a", "{{ initial.name }}"]}]}),
    st.just("not {{ initial.id }} or ({{ initial.name }} contains 'a')"),
)
RETRY = st.fixed_dictionaries({}, optional={
    "maxRetries": st.integers(0, 5), "delayMs": st.integers(0, 5000), "backoffMultiplier": st.sampled_from([1, 1.5, 2]),
    "mode": st.sampled_from(["smart", "aggressive", "rate-limits-only", "custom"]),
    "nonRetryableErrorCodes": st.lists(st.sampled_from(["HTTP_CLIENT_ERROR", "X_FAILED"]), max_size=2)})
ON_ERROR = st.one_of(st.sampled_from(["stop-workflow", "continue-workflow"]), st.fixed_dictionaries(
    {"action": st.sampled_from(["stop-workflow", "continue-workflow", "retry-step", "retry-workflow"])},
    optional={"maxRetries": st.integers(0, 3)}))
COMMON = {"title": TEXT, "continueOnError": st.booleans(), "timeout": st.sampled_from([0.5, 1, 30]),
          "runLimit": st.integers(-1, 5), "retryPolicy": RETRY, "onError": ON_ERROR, "skipCondition": CONDITIONS}
LEAF_INPUTS = {
    "core.http": st.fixed_dictionaries({"url": TEMPLATE}, optional={
        "method": st.sampled_from(["GET", "POST"]), "headers": st.dictionaries(TEXT, VALUE, max_size=2)}),
    "core.set-variable": st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), VALUE, max_size=3),
    "core.return": st.fixed_dictionaries({}, optional={"output": VALUE}),
    "core.delay": st.fixed_dictionaries({"seconds": st.integers(0, 5)}),
    "core.code": st.fixed_dictionaries({"script": st.just("return {'ok': True}")}),
    "core.validate": st.fixed_dictionaries({"schema": st.just({"type": "object"}), "data": VALUE}),
    "logic::wait": st.fixed_dictionaries({"signal": TEXT.map(lambda t: t or "go")}),
}


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(sorted(LEAF_INPUTS)).flatmap(
        lambda kind: st.fixed_dictionaries({"stepType": st.just(kind), "input": LEAF_INPUTS[kind]},
                                           optional=COMMON))


def _nested(children: st.SearchStrategy[list[dict[str, Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    if_step = st.builds(lambda c, t, e: {"stepType": "core.if", "input": {"condition": c, "then": t, "else": e}},
                        CONDITIONS, children, children)
    loop = st.builds(lambda items, body: {"stepType": "core.for-each", "input": {"items": items, "steps": body,
                                                                                   "concurrency": 2}},
                     st.sampled_from(["{{ initial.items }}", [1, 2]]), children)
    return st.one_of(if_step, loop)


STEPS = st.recursive(st.lists(_leaf(), min_size=1, max_size=3),
                     lambda children: st.lists(st.one_of(_leaf(), _nested(children)), min_size=1, max_size=3),
                     max_leaves=8)


def _number_ids(steps: list[dict[str, Any]], counter: list[int]) -> None:
    for step in steps:
        step["stepId"] = f"s{counter[0]}"
        counter[0] += 1
        for key in ("then", "else", "steps"):
            if isinstance(step.get("input", {}).get(key), list):
                _number_ids(step["input"][key], counter)


def _graph_spelling(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, step in enumerate(steps):
        s = dict(step)
        s["id"], s["action"], s["parameters"] = s.pop("stepId"), s.pop("stepType"), s.pop("input")
        if i + 1 < len(steps):
            s["next"] = steps[i + 1]["stepId"]
        out.append(s)
    return out


@st.composite
def valid_documents(draw: st.DrawFn) -> Any:
    steps = draw(STEPS)
    _number_ids(steps, [0])
    if draw(st.booleans()):
        steps = _graph_spelling(steps)
    shape = draw(st.sampled_from(["object", "object+settings", "list"]))
    if shape == "list":
        return steps
    doc: dict[str, Any] = {"id": draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)), "steps": steps}
    if shape == "object+settings":
        doc["settings"] = {"timeout": 60, "retryPolicy": draw(RETRY), "strictTemplates": draw(st.booleans()),
                           "limits": {"loopBatchSize": 100}}
        doc["input"] = {"type": "object", "properties": {"id": {"type": "integer"}}}
    return doc


def _parse(doc: Any) -> Any:
    try:
        flow = parse_flow(doc, "generated.yaml")
    except FlowValidationError as exc:
        assert exc.problems, "a FlowValidationError without problems"
        assert not any("internal validation error" in p.message for p in exc.problems), exc.problems
        return None
    json.dumps(flow.to_wire())
    return flow


@budget(100)
@given(valid_documents())
def test_valid_documents_load_match_the_schema_and_round_trip(doc: Any) -> None:
    SCHEMA.validate(doc)
    flow = parse_flow(doc, "generated.yaml")
    wire = flow.to_wire()
    assert parse_flow(from_wire(json.loads(json.dumps(wire)))).to_wire() == wire


# ---- mutated documents ------------------------------------------------------------------------------------
def _nodes(doc: Any, max_depth: int = 40) -> list[tuple[Any, Any]]:
    """``(container, key)`` of every value in ``doc`` down to ``max_depth``."""
    out: list[tuple[Any, Any]] = []
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            out.append((node, key))
            if depth < max_depth:
                stack.append((value, depth + 1))
    return out


def _deep(kind: str, depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def mutate(doc: Any, rng: random.Random, junk: list[Any], *, fresh: bool = False) -> Any:
    """Apply 1-3 random mutations: deleted keys, wrong types, unicode, huge strings, deep nesting, unknown keys,
    duplicated steps. ``fresh``: ``doc`` is not shared with anything, mutate it in place."""
    if not fresh:
        doc = copy.deepcopy(doc)  # strategies may share objects (st.just): never mutate them
    for _ in range(rng.randint(1, 3)):
        nodes = _nodes(doc)
        if not nodes:
            break
        parent, key = rng.choice(nodes)
        action = rng.choice(["delete", "junk", "unicode", "huge", "deep", "unknown-key", "duplicate"])
        if action == "delete":
            del parent[key]
        elif action == "junk":
            parent[key] = copy.deepcopy(rng.choice(junk))
        elif action == "unicode":
            parent[key] = "".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(rng.randint(0, 20)))
        elif action == "huge":
            piece = rng.choice(["x", "{{ a }}", "é"])
            parent[key] = piece * (rng.randint(60_000, 1_200_000) // len(piece))
        elif action == "deep":
            parent[key] = _deep(rng.choice(["list", "dict"]), rng.randint(30, 600))
        elif action == "unknown-key" and isinstance(parent, dict):
            parent[rng.choice(["nxt", "stepid", "x", "", "$", "inputs"])] = copy.deepcopy(rng.choice(junk))
        elif action == "duplicate" and isinstance(parent, list) and isinstance(parent[key], dict):
            parent.append(dict(parent[key]))
    return doc


JUNK_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 10**30, "", "x", "{{", "}}", "{{ }}", "{{ x | }}", "{{7*7}}",
                          "${7*7}", "{{ a[ }}", "stop-workflow", "$x", "core.htp", "logic::loop", "{{ 'a }}",
                          "\ud800", "\x00", "s0", "s1", [], [1, "a"], {}, {"a": 1}, {"==": [1]}, {"if": 3}]


@budget(150)
@given(valid_documents(), SEEDS)
def test_mutated_documents_only_raise_flow_validation_errors(doc: Any, seed: int) -> None:
    rng = random.Random(seed)
    _parse(mutate(doc, rng, JUNK_VALUES))


# ---- the same at volume: documents built from a seeded random generator (cheap to draw) -------------------
class RandomFlow:
    """Valid flow documents from a ``random.Random``: both spellings, nested if / for-each, every option."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.count = rng, 0

    def text(self) -> str:
        return self.rng.choice(["", "a", "b c", "é/-", "x?y=1"])

    def template(self) -> str:
        return f"{self.text()}{{{{ {self.rng.choice(EXPRESSIONS)} }}}}{self.text()}"

    def value(self) -> Any:
        pick = self.rng.randrange(5)
        return self.text() if pick == 0 else self.template() if pick == 1 else [self.rng.randint(-5, 5), True,
                                                                                None][pick - 2]

    def condition(self) -> Any:
        expr = self.rng.choice(EXPRESSIONS)
        return self.rng.choice([{"==": [f"{{{{ {expr} }}}}", self.value()]}, f"{{{{ {expr} }}}} >= 2",
                                {"and": [{"!!": "{{ initial.id }}"}, {"in": ["a", "{{ initial.name }}"]}]},
                                "not {{ initial.id }} or ({{ initial.name }} contains 'a')"])

    def options(self) -> dict[str, Any]:
        rng = self.rng
        choices = {"title": self.text, "continueOnError": lambda: rng.random() < 0.5,
                   "timeout": lambda: rng.choice([0.5, 1, 30]), "runLimit": lambda: rng.randint(-1, 5),
                   "retryPolicy": lambda: {"maxRetries": rng.randint(0, 5), "mode": rng.choice(
                       ["smart", "aggressive", "rate-limits-only", "custom"]), "delayMs": rng.randint(0, 5000)},
                   "onError": lambda: rng.choice(["continue-workflow", {"action": "retry-step", "maxRetries": 2},
                                                  {"action": "retry-workflow", "maxRetries": 1}]),
                   "skipCondition": self.condition}
        return {k: make() for k, make in choices.items() if rng.random() < 0.25}

    def leaf(self) -> dict[str, Any]:
        kind = self.rng.choice(["core.http", "core.set-variable", "core.return", "core.delay", "core.validate",
                                "http.request", "logic::wait"])
        inputs = {"core.http": lambda: {"url": self.template(), "method": "GET"},
                  "http.request": lambda: {"url": self.template()},
                  "core.set-variable": lambda: {"a": self.value(), "b": self.template()},
                  "core.return": lambda: {"output": self.value()}, "core.delay": lambda: {"seconds": 1},
                  "core.validate": lambda: {"schema": {"type": "object"}, "data": self.value()},
                  "logic::wait": lambda: {"signal": "go", "timeout": 5}}
        return {"stepType": kind, "input": inputs[kind](), **self.options()}

    def steps(self, depth: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(self.rng.randint(1, 3)):
            if depth < 3 and self.rng.random() < 0.3:
                body = self.steps(depth + 1)
                step = self.rng.choice([
                    {"stepType": "core.if", "input": {"condition": self.condition(), "then": body,
                                                      "else": self.steps(depth + 1)}},
                    {"stepType": "core.for-each", "input": {"items": "{{ initial.items }}", "steps": body}}])
            else:
                step = self.leaf()
            step["stepId"] = f"s{self.count}"
            self.count += 1
            out.append(step)
        return out

    def document(self) -> Any:
        steps = self.steps(0)
        if self.rng.random() < 0.5:
            steps = _graph_spelling(steps)
        if self.rng.random() < 0.2:
            return steps
        return {"id": f"flow-{self.rng.randint(0, 99)}", "version": self.rng.randint(1, 3), "steps": steps,
                "settings": {"strictTemplates": self.rng.random() < 0.5, "retryPolicy": {"maxRetries": 1}}}


BATCH = 4  # documents per example: the per-example overhead of hypothesis is larger than a load


@budget(750)
@given(SEEDS)
def test_random_valid_documents_load_and_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(BATCH):
        doc = RandomFlow(rng).document()
        if rng.random() < 0.1:  # the schema check costs more than the load: a sample is enough
            SCHEMA.validate(doc)
        wire = parse_flow(doc, "random.json").to_wire()
        if rng.random() < 0.2:
            assert parse_flow(from_wire(json.loads(json.dumps(wire)))).to_wire() == wire


@budget(1050)
@given(SEEDS)
def test_random_mutated_documents_only_raise_flow_validation_errors(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(BATCH + 1):
        _parse(mutate(RandomFlow(rng).document(), rng, JUNK_VALUES, fresh=True))


def _random_text(rng: random.Random) -> str:
    """A random flow as JSON or YAML text, cut short at a random place half of the time."""
    doc = RandomFlow(rng).document()
    text = json.dumps(doc) if rng.random() < 0.75 else yaml.safe_dump(doc, allow_unicode=True)
    return text[:rng.randint(0, len(text))] if rng.random() < 0.5 else text


@budget(375)
@given(st.lists(st.one_of(st.text(max_size=200), SEEDS.map(lambda seed: _random_text(random.Random(seed))),
                          st.sampled_from(["&a [*a]", "a: !!python/object:os.system x", "- [[[[[[", "{a: 1, a: 2}",
                                           "x: 2024-13-45", "steps: !!binary aGk=", "[" * 5000, '{"a": NaN}'])),
                min_size=BATCH, max_size=BATCH),
       st.sampled_from(["f.yaml", "f.json", "f"]))
def test_raw_text_only_raises_flow_validation_errors(texts: list[str], source: str) -> None:
    for text in texts:
        try:
            load_flow_text(text, source)
        except FlowValidationError as exc:
            assert exc.problems and not any("internal validation error" in p.message for p in exc.problems)


# ---- hostile templates and conditions ---------------------------------------------------------------------
PIECES = st.sampled_from(["{{", "}}", " ", "|", ":", ",", ".", "[", "]", "'", '"', "\\", "-", "$", "initial",
                          "items", "size", "default", "plus", "divided_by", "date", "0", "-1", "1e999", "__class__",
                          "secrets", "x", "é", "\x00", "\ud800", "json", "where", "slice", "round", "(", ")", "==",
                          "and", "or", "not", "in", "true", "null", "!", "<", "{", "}", "%Y", "9" * 30])
HOSTILE = st.one_of(st.lists(PIECES, max_size=40).map("".join), st.text(max_size=60))


@budget(1500)
@given(HOSTILE, st.booleans())
def test_templates_only_raise_template_errors(text: str, strict: bool) -> None:
    try:
        render({"a": [text, {"b": text}]}, SCOPE, strict=strict)
    except TemplateError:
        pass
    check_syntax(text, "x")
    find_templates(text)
    references(text)


JSON_LOGIC = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), HOSTILE),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.builds(lambda op, args: {op: args},
                  st.sampled_from(["and", "or", "!", "!!", "==", "!=", "===", "<", "<=", ">", "in", "var", "if",
                                   "+", "-", "*", "/", "%", "missing", "cat", "min", "max", "merge", "nope"]),
                  st.one_of(inner, st.lists(inner, max_size=4)))),
    max_leaves=10)


@budget(1500)
@given(st.one_of(HOSTILE, JSON_LOGIC), st.booleans())
def test_conditions_only_raise_template_errors(condition: Any, strict: bool) -> None:
    try:
        assert evaluate(condition, SCOPE, strict=strict) in (True, False)
    except TemplateError:
        pass
    condition_syntax(condition, "c")
