"""A JSON Schema check counts its work (``workflows.language._schemas``): an exponential schema is refused at
the cap, ordinary checks of a few thousand items pass, and the count is the same on every run (replay)."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide.workflows.language import _schemas
from flowtide.workflows.language._rules import without_newer_rules
from flowtide.workflows.language._schemas import SchemaWorkExceeded, safe_validator, schema_errors
from flowtide.workflows.limits import MAX_SCHEMA_OPS
from tests.support.flows import any_of_bomb


def spent(schema: Any, data: Any) -> int:
    """The work ``data``'s check takes, read from the meter after a check under a cap it cannot reach."""
    token = _schemas._LEFT.set([1 << 40])
    try:
        list(safe_validator(schema).iter_errors(data))
        return (1 << 40) - _schemas._LEFT.get()[0]  # type: ignore[index]
    finally:
        _schemas._LEFT.reset(token)


ITEM = {"type": "object", "required": ["p0"],
        "properties": {f"p{i}": {"type": "string", "maxLength": 50} for i in range(10)}}


@pytest.mark.parametrize(("schema", "data"), [
    (any_of_bomb(40), 1),                                            # 2**40 branches
    ({"uniqueItems": True}, [*range(20_000), "x"]),             # items that do not sort: every pair
    ({"items": {"enum": list(range(100_000))}}, [99_999] * 10),  # every entry compared
    ({"patternProperties": {f"^p{i}": {} for i in range(300)}}, {f"k{i}": 1 for i in range(3000)}),
])
def test_work_past_the_cap_is_refused(schema: Any, data: Any) -> None:
    with pytest.raises(SchemaWorkExceeded, match=f"{MAX_SCHEMA_OPS:,} evaluations"):
        schema_errors(safe_validator(schema), data)


def test_ordinary_checks_pass_and_count_the_same_every_time() -> None:
    data = [{f"p{i}": "x" for i in range(10)} for _ in range(3000)]
    assert schema_errors(safe_validator({"type": "array", "items": ITEM}), data) == []
    assert spent({"type": "array", "items": ITEM}, data) == spent({"type": "array", "items": ITEM}, data)
    assert spent({"type": "array", "items": ITEM}, data) < MAX_SCHEMA_OPS
    assert schema_errors(safe_validator({"type": "array", "items": {"type": "integer"}}), list(range(40_000))) == []
    assert len(schema_errors(safe_validator({"items": {"type": "string"}}), list(range(500)), 100)) == 100


def test_a_run_recorded_before_the_cap_checks_as_it_did() -> None:
    with without_newer_rules():  # how the engine replays a run recorded before the newer rules
        assert len(schema_errors(safe_validator(any_of_bomb(14)), 1)) == 1
    with pytest.raises(SchemaWorkExceeded):
        schema_errors(safe_validator(any_of_bomb(14)), 1)
