"""JsonLogic as jsonlogic.com specifies it: cases written from its operator reference, values not just truth."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowtide.workflows.errors import TemplateError
from flowtide.workflows.language.conditions import evaluate
from flowtide.workflows.language.conditions.logic import MAX_OPS, logic

INTS = {"integers": [1, 2, 3, 4, 5]}
PIES = {"pies": [{"filling": "pumpkin", "temp": 110}, {"filling": "rhubarb", "temp": 210},
                 {"filling": "apple", "temp": 310}]}
CASES: list[tuple[Any, Any, Any]] = [
    # accessing data
    ({"var": ["a"]}, {"a": 1, "b": 2}, 1), ({"var": "a"}, {"a": 1}, 1), ({"var": ["z", 26]}, {"a": 1}, 26),
    ({"var": "champ.name"}, {"champ": {"name": "Fezzig", "height": 223}}, "Fezzig"),
    ({"var": 1}, ["zero", "one", "two"], "one"), ({"var": ""}, 7, 7),
    ({"missing": ["a", "b"]}, {"a": "apple", "c": "carrot"}, ["b"]), ({"missing": ["a", "b"]}, {"a": 1, "b": 2}, []),
    ({"missing_some": [1, ["a", "b", "c"]]}, {"a": "apple"}, []),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": "apple"}, ["b", "c"]),
    ({"if": [{"merge": [{"missing": ["first_name", "last_name"]}, {"missing_some": [1, ["cell", "home"]]}]},
             "We require first name, last name, and one phone number.", "OK to proceed"]},
     {"first_name": "Bruce", "last_name": "Wayne"}, "We require first name, last name, and one phone number."),
    # logic and boolean operations
    ({"if": [True, "yes", "no"]}, {}, "yes"), ({"if": [False, "yes", "no"]}, {}, "no"),
    ({"if": [{"<": [{"var": "temp"}, 0]}, "freezing", {"<": [{"var": "temp"}, 100]}, "liquid", "gas"]},
     {"temp": 55}, "liquid"),
    ({"==": [1, 1]}, {}, True), ({"==": [1, "1"]}, {}, True), ({"==": [0, False]}, {}, True),
    ({"===": [1, 1]}, {}, True), ({"===": [1, "1"]}, {}, False), ({"!=": [1, 2]}, {}, True),
    ({"!==": [1, "1"]}, {}, True), ({"!": [True]}, {}, False), ({"!": True}, {}, False),
    ({"!!": [[]]}, {}, False), ({"!!": ["0"]}, {}, True),
    ({"or": [True, False]}, {}, True), ({"or": [False, "a"]}, {}, "a"), ({"or": [False, 0, "a"]}, {}, "a"),
    ({"and": [True, "a", 3]}, {}, 3), ({"and": [True, "", 3]}, {}, ""),
    # numeric operations
    ({">": [2, 1]}, {}, True), ({">=": [1, 1]}, {}, True), ({"<": [1, 2]}, {}, True), ({"<=": [1, 1]}, {}, True),
    ({"<": [1, 2, 3]}, {}, True), ({"<": [1, 1, 3]}, {}, False), ({"<": [1, 4, 3]}, {}, False),
    ({"<=": [1, 1, 3]}, {}, True), ({"<=": [1, {"var": "temp"}, 10]}, {"temp": 10}, True),
    ({"max": [1, 2, 3]}, {}, 3), ({"min": [1, 2, 3]}, {}, 1),
    ({"+": [4, 2]}, {}, 6), ({"-": [4, 2]}, {}, 2), ({"*": [4, 2]}, {}, 8), ({"/": [4, 2]}, {}, 2),
    ({"+": [2, 2, 2, 2, 2]}, {}, 10), ({"*": [2, 2, 2, 2, 2]}, {}, 32), ({"-": 2}, {}, -2),
    ({"+": "3.14"}, {}, 3.14), ({"%": [101, 2]}, {}, 1),
    # array operations
    ({"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}, INTS, [2, 4, 6, 8, 10]),
    ({"filter": [{"var": "integers"}, {"%": [{"var": ""}, 2]}]}, INTS, [1, 3, 5]),
    ({"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, INTS, 15),
    ({"reduce": [{"var": "nothing"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, INTS, 0),
    ({"map": [{"var": "nothing"}, {"var": ""}]}, INTS, []),
    ({"all": [[1, 2, 3], {">": [{"var": ""}, 0]}]}, {}, True), ({"all": [[], {">": [{"var": ""}, 0]}]}, {}, False),
    ({"some": [[-1, 0, 1], {">": [{"var": ""}, 0]}]}, {}, True),
    ({"none": [[-3, -2, -1], {">": [{"var": ""}, 0]}]}, {}, True), ({"none": [[], True]}, {}, True),
    ({"some": [{"var": "pies"}, {"==": [{"var": "filling"}, "apple"]}]}, PIES, True),
    ({"all": [{"var": "pies"}, {">": [{"var": "temp"}, 100]}]}, PIES, True),
    ({"merge": [[1, 2], [3, 4]]}, {}, [1, 2, 3, 4]), ({"merge": [1, 2, [3, 4]]}, {}, [1, 2, 3, 4]),
    ({"in": ["Ringo", ["John", "Paul", "George", "Ringo"]]}, {}, True),
    # string operations
    ({"in": ["Spring", "Springfield"]}, {}, True), ({"cat": ["I love", " pie"]}, {}, "I love pie"),
    ({"cat": ["I love ", {"var": "filling"}, " pie"]}, {"filling": "apple"}, "I love apple pie"),
    ({"substr": ["jsonlogic", 4]}, {}, "logic"), ({"substr": ["jsonlogic", -5]}, {}, "logic"),
    ({"substr": ["jsonlogic", 1, 3]}, {}, "son"), ({"substr": ["jsonlogic", 4, -2]}, {}, "log"),
    # miscellaneous
    ({"log": "apple"}, {}, "apple"),
]


@pytest.mark.parametrize(("rule", "data", "want"), CASES, ids=[str(c[0])[:60] for c in CASES])
def test_operator_reference(rule: Any, data: Any, want: Any) -> None:
    assert logic(rule, data, strict=False) == want


@pytest.mark.parametrize(("value", "truthy"), [
    (0, False), (-1, True), ([], False), ([0], True), ("", False), ("0", True), (None, False), ({}, True),
    ("false", True), (False, False), (0.0, False), ("a", True)])
def test_truthiness_table(value: Any, truthy: bool) -> None:
    assert evaluate({"!!": [{"var": "v"}]}, {"v": value}) is truthy
    assert evaluate({"if": [{"var": "v"}, True, False]}, {"v": value}) is truthy


def test_array_operators_read_items_while_templates_read_the_flow() -> None:
    scope = {"initial": {"want": "b", "tags": ["a", "b", "c"]}}
    assert logic({"filter": [{"var": "initial.tags"}, {"!=": [{"var": ""}, "{{ initial.want }}"]}]},
                 scope, strict=False) == ["a", "c"]


def test_work_per_evaluation_is_capped_well_under_the_deadlock_detector() -> None:
    scope = {"items": list(range(MAX_OPS))}
    started = time.monotonic()
    with pytest.raises(TemplateError, match="too much work"):
        evaluate({"some": [{"var": "items"}, {"<": [{"var": ""}, -1]}]}, scope)
    with pytest.raises(TemplateError, match="too much work"):
        evaluate({"map": [{"var": "items"}, {"map": [list(range(1000)), 1]}]}, {"items": list(range(1000))})
    assert time.monotonic() - started < 1.5
    assert evaluate({"some": [{"var": "items"}, {"==": [{"var": ""}, 5000]}]}, {"items": list(range(10_000))})


def test_deliberate_deviations() -> None:
    with pytest.raises(TemplateError, match="by zero"):
        evaluate({"/": [1, 0]}, {})  # JavaScript gives Infinity
    assert evaluate({"<": [None, 1]}, {}) is False  # JavaScript coerces null to 0
    assert evaluate({"==": [None, False]}, {}) is False  # a missing value is not false
