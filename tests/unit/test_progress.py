"""The run's progress is kept incrementally and says what a scan of every step row says."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from flowtide.workflows.engine._state import TERMINAL_STEP_STATUSES, Frame, RunState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ops = st.lists(st.one_of(
    st.tuples(st.just("begin"), st.sampled_from("abcdef"), st.booleans()),
    st.tuples(st.just("finish"), st.integers(0, 50), st.sampled_from(sorted(TERMINAL_STEP_STATUSES))),
    st.tuples(st.just("fold"), st.integers(0, 6), st.none()),
    st.tuples(st.just("resume"), st.none(), st.none()),
), max_size=60)


def scanned(state: RunState) -> dict[str, int]:
    """Progress as it was computed before: every row, every time."""
    done = {s["stepId"] for s in state.steps if s["status"] in TERMINAL_STEP_STATUSES}
    done.update(state.earlier.get("done") or ())
    return {"done": len(done), "total": max(state.total_steps, len(done))}


@settings(max_examples=300, deadline=None)
@given(ops)
def test_incremental_progress_equals_a_full_scan(steps):
    state = RunState(flow={}, total_steps=4)
    frame = Frame(scope={})
    for op, a, b in steps:
        if op == "begin":
            state.begin({"id": a, "kind": "core.set-variable"}, frame.child(1, None) if b else frame, NOW)
        elif op == "finish" and state.steps:
            state.steps[a % len(state.steps)]["status"] = b
        elif op == "fold":
            state.summarise_rows(a)
        elif op == "resume":  # continue-as-new hands the rows and the folded counts to the next run
            state.steps, state.earlier = list(state.steps), dict(state.earlier)
        assert state.progress() == scanned(state)


def test_ten_thousand_rows_are_counted_once_each():
    state = RunState(flow={}, total_steps=1)
    frame = Frame(scope={})
    for i in range(10_000):
        row = state.begin({"id": f"s{i % 7}", "kind": "core.set-variable"}, frame.child(i, None), NOW)
        assert state.progress()["done"] == min(i, 7)
        row["status"] = "completed"
    assert state.progress() == {"done": 7, "total": 7}
    tally = state._done
    assert tally is not None and tally.open == [] and tally.seen == 10_000
