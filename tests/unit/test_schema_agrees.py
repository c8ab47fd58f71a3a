"""``flowtide schema`` and ``flowtide validate`` agree on generated documents; YAML is read as editors read it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtide
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language.dsl import flow_json_schema
from flowtide.workflows.language.dsl.raw import parse_text

SCHEMA = jsonschema.Draft202012Validator(flow_json_schema())
EDGES = [0, 1, -1, 2.0, 0.5, 100, 101, 1000, 1023, 1024, 10_000, 10_001, 86_400_000, 86_400_001, 31_536_000,
         31_536_001, 99_999_999_999, 999_999_999_999, 100_000_000, 100_000_001, 10_000_000, 10_000_001]
VALUES = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGES), st.integers(-3, 10**13),
                   st.floats(-1e13, 1e13, allow_nan=False), st.text(max_size=2))
ACTIONS = st.sampled_from(["stop-workflow", "continue-workflow", "retry-step", "retry-workflow", "explode"])


def maybe(keys: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=keys)


RETRY = maybe({"maxRetries": VALUES, "delayMs": VALUES, "backoffMultiplier": VALUES, "maxDelayMs": VALUES,
               "mode": st.sampled_from(["smart", "custom", "sometimes"])})
ON_ERROR = st.one_of(ACTIONS, maybe({"action": ACTIONS, "maxRetries": VALUES}))
LIMITS = maybe({"outputBytes": VALUES, "httpResponseBytes": VALUES, "maxStepExecutions": VALUES,
                "loopBatchSize": VALUES})
SETTINGS = maybe({"timeout": VALUES, "retryPolicy": st.one_of(st.none(), RETRY), "onError": ON_ERROR,
                  "limits": st.one_of(st.none(), LIMITS), "strictTemplates": st.booleans()})
STEP = maybe({"retryPolicy": st.one_of(st.none(), RETRY), "timeout": VALUES, "runLimit": VALUES,
              "onError": ON_ERROR})


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    step = {"stepId": "a", "stepType": "core.set-variable", "input": {"x": 1}, **draw(STEP)}
    doc: dict[str, Any] = {"id": "agree", "steps": [step], **draw(maybe({"version": VALUES, "settings": SETTINGS}))}
    return doc


@settings(max_examples=300, deadline=None)
@given(documents())
def test_schema_and_validate_agree(doc: dict[str, Any]) -> None:
    problems = flowtide.validate(doc)
    assert SCHEMA.is_valid(doc) == (problems == []), (doc, problems, next(SCHEMA.iter_errors(doc), None))


@pytest.mark.parametrize("doc", [
    {"retryPolicy": {"delayMs": 999_999_999_999}}, {"retryPolicy": {"backoffMultiplier": 1000}},
    {"settings": {"timeout": 99_999_999_999}}])
def test_the_reported_disagreements_are_refused_by_both(doc: dict[str, Any]) -> None:
    settings_ = doc.pop("settings", None)
    flow = {"id": "x", "steps": [{"stepId": "a", "stepType": "core.set-variable", "input": {"x": 1}, **doc}],
            **({"settings": settings_} if settings_ else {})}
    assert flowtide.validate(flow) and not SCHEMA.is_valid(flow)


def test_yaml_12_booleans_and_duplicate_keys() -> None:
    doc = parse_text("id: b\nsteps:\n  - stepId: a\n    stepType: core.set-variable\n"
                     "    input: {country: NO, answer: yes, flag: on, real: true, other: False}\n", "f.yaml")
    assert doc["steps"][0]["input"] == {"country": "NO", "answer": "yes", "flag": "on", "real": True,
                                        "other": False}
    with pytest.raises(FlowValidationError, match=r"line 4 .*duplicate key 'stepType' \(first given at line 3\)"):
        parse_text("id: d\nsteps:\n  - {stepId: a, stepType: core.set-variable,\n     stepType: core.return}\n",
                   "f.yaml")
    merged = parse_text("base: &b {x: 1}\nid: m\nsteps:\n  - <<: *b\n    x: 2\n", "f.yaml")
    assert merged["steps"][0]["x"] == 2  # a merge key may be overridden: not a duplicate
