"""Conditions: every JsonLogic operator, expression strings, the missing/false rule, values bound not spliced."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.conditions import OPS, check_syntax, evaluate, references

SCOPE: dict[str, Any] = {
    "fetch-data": {"$meta": {"success": False, "skipped": False}, "status": 503},
    "validate-critical-data": {"output": {"valid": False}},
    "initial": {"n": 5, "name": "ann", "tags": ["a", "b"], "s": "hello", "zero": 0, "empty": "", "obj": {"k": 1},
                "num_text": "5", "flag_text": "true"},
    "evil": {"v": "a' or 1==1 or 'a", "w": "{{ initial.n }}", "x": "true or true"},
}


def ev(cond: Any, **kw: Any) -> bool:
    return evaluate(cond, SCOPE, **kw)


# ---- JsonLogic: one test per operator ------------------------------------------------------------------
LOGIC_CASES: dict[str, list[tuple[Any, bool]]] = {
    "and": [({"and": [True, "{{ initial.n }}"]}, True), ({"and": [True, "{{ initial.zero }}"]}, False)],
    "or": [({"or": [False, "{{ initial.name }}"]}, True), ({"or": [False, "{{ initial.empty }}"]}, False)],
    "!": [({"!": ["{{ fetch-data.$meta.success }}"]}, True), ({"!": "{{ initial.n }}"}, False)],
    "!!": [({"!!": ["{{ initial.tags }}"]}, True), ({"!!": [[]]}, False)],
    "==": [({"==": ["{{ fetch-data.$meta.success }}", False]}, True), ({"==": ["{{ initial.num_text }}", 5]}, True)],
    "!=": [({"!=": ["{{ initial.name }}", "bob"]}, True)],
    "===": [({"===": ["{{ initial.n }}", 5]}, True), ({"===": ["{{ initial.num_text }}", 5]}, False)],
    "!==": [({"!==": ["{{ initial.num_text }}", 5]}, True)],
    "<": [({"<": ["{{ initial.n }}", 6]}, True), ({"<": [1, "{{ initial.n }}", 5]}, False)],
    "<=": [({"<=": [1, "{{ initial.n }}", 5]}, True), ({"<=": ["a", "b"]}, True)],
    ">": [({">": ["{{ fetch-data.status }}", 499]}, True), ({">": [10, "{{ initial.n }}", 5]}, False)],
    ">=": [({">=": ["{{ initial.n }}", 5]}, True), ({">=": ["{{ initial.nope }}", 0]}, False),
           ({">=": [9, "{{ initial.n }}", 5]}, True)],
    "in": [({"in": ["a", "{{ initial.tags }}"]}, True), ({"in": ["ell", "{{ initial.s }}"]}, True),
           ({"in": ["z", "{{ initial.tags }}"]}, False)],
    "var": [({"var": "fetch-data.$meta.success"}, False), ({"var": "initial.tags.1"}, True),
            ({"var": ["initial.nope", True]}, True)],
    "missing": [({"missing": ["initial.n", "initial.nope"]}, True), ({"missing": ["initial.n"]}, False)],
    "missing_some": [({"missing_some": [1, ["initial.n", "initial.nope"]]}, False)],
    "if": [({"if": [{"var": "initial.zero"}, False, {"var": "initial.n"}, True, False]}, True)],
    "?:": [({"?:": [True, "{{ initial.name }}", ""]}, True)],
    "+": [({"==": [{"+": ["{{ initial.n }}", 1, "2"]}, 8]}, True)],
    "-": [({"==": [{"-": ["{{ initial.n }}", 7]}, -2]}, True), ({"==": [{"-": [3]}, -3]}, True)],
    "*": [({"==": [{"*": ["{{ initial.n }}", 2]}, 10]}, True)],
    "/": [({"==": [{"/": ["{{ initial.n }}", 2]}, 2.5]}, True)],
    "%": [({"==": [{"%": ["{{ initial.n }}", 2]}, 1]}, True)],
    "cat": [({"==": [{"cat": ["{{ initial.name }}", "-", 1]}, "ann-1"]}, True)],
    "min": [({"==": [{"min": [3, "{{ initial.n }}", 9]}, 3]}, True)],
    "max": [({"==": [{"max": [3, "{{ initial.n }}", 9]}, 9]}, True)],
    "merge": [({"in": ["b", {"merge": [["a"], "{{ initial.tags }}"]}]}, True)],
    "substr": [({"==": [{"substr": ["{{ initial.s }}", 1, 3]}, "ell"]}, True)],
    "map": [({"in": ["A", {"map": ["{{ initial.tags }}", {"cat": [{"var": ""}, "!"]}]}]}, False)],
    "filter": [({"filter": ["{{ initial.tags }}", {"==": [{"var": ""}, "b"]}]}, True)],
    "reduce": [({"==": [{"reduce": ["{{ initial.tags }}", {"cat": [{"var": "accumulator"}, {"var": "current"}]},
                                    ""]}, "ab"]}, True)],
    "all": [({"all": ["{{ initial.tags }}", {"var": ""}]}, True), ({"all": [[], True]}, False)],
    "some": [({"some": ["{{ initial.tags }}", {"==": [{"var": ""}, "b"]}]}, True)],
    "none": [({"none": ["{{ initial.tags }}", {"==": [{"var": ""}, "z"]}]}, True)],
    "log": [({"log": "{{ initial.n }}"}, True)],
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_json_logic_operator(op: str) -> None:
    assert op in LOGIC_CASES, f"operator '{op}' has no test case"
    for cond, want in LOGIC_CASES[op]:
        assert ev(cond) is want, cond


# ---- expression strings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cond", "want"), [
    ("{{validate-critical-data.output.valid}} == false", True),
    ("{{ initial.n }} > 3 and {{ initial.name }} != 'a'", True),
    ("{{ initial.n }} > 3 && {{ initial.name }} == 'a'", False),
    ("{{ initial.n }} < 3 or {{ initial.name }} == \"ann\"", True),
    ("{{ initial.n }} < 3 || {{ initial.zero }}", False),
    ("not {{ initial.n }} == 5", False),
    ("!({{ initial.n }} == 5)", False),
    ("({{ initial.n }} >= 5) and ({{ initial.n }} <= 5)", True),
    ("{{ initial.n }} === 5", True),
    ("{{ initial.num_text }} !== 5", True),
    ("'a' in {{ initial.tags }}", True),
    ("'z' not in {{ initial.tags }}", True),
    ("{{ initial.s }} contains 'ell'", True),
    ("{{ initial.obj }} contains 'k'", True),
    ("{{ initial.n }}", True),
    ("{{ initial.zero }}", False),
    ("{{ initial.tags | size }} == 2", True),
    ("'{{ initial.name }}-x' == 'ann-x'", True),
    ("true", True),
    ("null", False),
    ("-1 < 0", True),
    ("{{ initial.flag_text }} == true", True),
])
def test_expression_strings(cond: str, want: bool) -> None:
    assert ev(cond) is want


def test_plain_values_are_truthiness() -> None:
    assert evaluate(True, {}) is True
    assert evaluate(None, {}) is False
    assert evaluate(0, {}) is False
    assert evaluate({}, {}) is True
    assert evaluate([], {}) is False


# ---- the documented missing rule ---------------------------------------------------------------------------
def test_missing_is_null_and_null_is_not_false() -> None:
    assert ev("{{ nope.x }} == false") is False
    assert ev("{{ nope.x }} != false") is True
    assert ev("{{ nope.x }} == null") is True
    assert ev({"==": ["{{ nope }}", False]}) is False
    assert ev({"!": "{{ nope }}"}) is True
    assert ev({"!!": "{{ nope }}"}) is False
    assert ev("{{ nope }}") is False
    assert ev("not {{ nope }}") is True
    assert ev("{{ nope }} < 1") is False and ev("{{ nope }} >= 1") is False


def test_strict_mode_raises_on_missing() -> None:
    with pytest.raises(TemplateError, match="nope"):
        ev("{{ nope }} == 1", strict=True)
    with pytest.raises(TemplateError, match="nope"):
        ev({"var": "initial.nope"}, strict=True)
    assert ev({"var": ["initial.nope", 1]}, strict=True) is True


# ---- values are bound, never spliced -------------------------------------------------------------------------
def test_bound_values_cannot_change_the_expression() -> None:
    assert ev("{{ evil.v }} == 'a'") is False
    assert ev("{{ evil.x }}") is True  # a non-empty string, not the expression "true or true"
    assert ev("{{ evil.x }} == false") is False
    assert ev("{{ evil.w }} == 5") is False  # the data '{{ initial.n }}' is not rendered again
    assert ev({"==": ["{{ evil.v }}", "a"]}) is False
    assert ev({"==": [{"var": "evil.w"}, "{{ initial.n }}"]}) is False


def test_data_that_looks_like_json_logic_is_data() -> None:
    scope = {"d": {"x": {"==": [1, 1]}}}
    assert evaluate({"==": [{"var": "d.x"}, {"a": 1, "b": 2}]}, scope) is False
    assert evaluate({"!!": {"var": "d.x"}}, scope) is True


# ---- syntax ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cond", "message"), [
    ("{{ x }} >", "ends where a value was expected"),
    ("x == 1", "unexpected 'x'"),
    ("{{ x }} = 1", "unexpected '='"),
    ("({{ x }}", "missing '\\)'"),
    ("{{ x }} == 1 1", "after a complete condition"),
    ("{{ x | nope }} == 1", "unknown filter"),
    ("'open", "unterminated string"),
    ("", "empty condition"),
    ("(" * 100 + "1" + ")" * 100, "nests deeper"),
    ({"nope": [1]}, "unknown operator 'nope'"),
    ({"==": [1]}, "takes 2 argument"),
    ({"and": [{"mising": ["a"]}]}, "did you mean 'missing'"),
])
def test_syntax_errors(cond: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        evaluate(cond, {})
    problems = check_syntax(cond, "steps[0].skipCondition")
    assert problems and problems[0].path.startswith("steps[0].skipCondition")


def test_check_syntax_paths_point_into_json_logic() -> None:
    problems = check_syntax({"and": [True, {"==": ["{{ x | nope }}", 1]}]}, "c")
    assert [p.path for p in problems] == ['c.and[1]["=="][0]']
    assert check_syntax({"==": ["{{ a.b }}", 1]}, "c") == []
    assert check_syntax("{{ a }} == 1", "c") == []


def test_runtime_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError, match="by zero"):
        evaluate({"/": [1, 0]}, {})
    with pytest.raises(TemplateError, match="expected a number"):
        evaluate({"+": ["abc", 1]}, {})
    deep: Any = True
    for _ in range(200):
        deep = {"!!": [deep]}
    with pytest.raises(TemplateError, match="nests deeper"):
        evaluate(deep, {})


def test_references() -> None:
    assert references("{{ a.b }} == 1 and '{{ c }}' == {{ d | default: e.f }}") == {"a", "c", "d", "e"}
    assert references({"and": [{"var": "x.y"}, {"==": ["{{ z }}", {"var": ["w", 1]}]}]}) == {"x", "z", "w"}
