"""The run record's size accounting: exact compact-JSON sizes and prefixes without encoding everything."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from flowtide.workflows.engine._state import PREVIEW_BYTES, _json_prefix, _Sizer, fit_record

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(json_values, st.sampled_from([0, 1, 9, 100, 10_000]))
def test_size_and_prefix_match_json_dumps(value, limit):
    exact = json.dumps(value, default=str, separators=(",", ":"))
    assert _Sizer()(value) == len(exact)
    assert _json_prefix(value, limit) == exact[:limit]


def test_a_record_that_repeats_a_big_payload_is_fitted_quickly():
    # 400 steps that each keep the same 2,000-item list: ~80 MB of JSON if encoded naively, step by step.
    items = [{"id": i, "name": f"customer-{i:05d}"} for i in range(2000)]
    rec = {"steps": [{"stepId": f"s{i}", "input": {"items": items}, "output": {"items": items, "n": i}}
                     for i in range(400)], "output": items}
    out = fit_record(rec, budget=1_500_000)
    text = json.dumps(out)
    assert len(text) <= 1_500_000
    first = out["steps"][0]
    original = next(s for s in rec["steps"] if s["stepId"] == first["stepId"])["output"]
    step = first["output"]
    assert step["$truncated"] and step["bytes"] == len(json.dumps(original, separators=(",", ":")))
    assert len(step["preview"]) == PREVIEW_BYTES
