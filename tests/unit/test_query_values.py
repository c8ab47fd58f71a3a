"""Values that enter a visibility query (run refs, list filters) are checked by one pattern
(``search_attributes.QUERY_VALUE``) before any call to Temporal: no quote, no megabyte."""

from __future__ import annotations

import pytest

from flowtide.client.resolve import RunNotFound, resolve_run


@pytest.mark.parametrize("ref", ["a" * 301, 'x" OR WorkflowId != "', "run id"])
async def test_a_hostile_run_reference_is_refused_before_temporal_is_asked(ref: str) -> None:
    with pytest.raises(RunNotFound) as caught:
        await resolve_run(None, ref)  # type: ignore[arg-type]  # no client: nothing may be asked of Temporal
    assert "is not a run id or workflow id" in str(caught.value) and len(str(caught.value)) < 200


async def test_a_reference_of_300_characters_is_still_asked_for() -> None:
    with pytest.raises(AttributeError):  # past the check: the (missing) client is used
        await resolve_run(None, "a" * 300)  # type: ignore[arg-type]
