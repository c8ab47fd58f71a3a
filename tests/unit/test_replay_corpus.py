"""The replay corpus (``tests/histories/``) against the current interpreter, with Temporal's Replayer.

No server: the Replayer runs the workflow code locally over the recorded events. Every history must replay;
deliberately changed interpreters (``tests.support.changed_interpreters``) must fail, with an explanation in
plain words. Re-record with ``python -m tests.support.record_histories`` when the interpreter changes on
purpose (see docs/runs.md).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from flowtide.client.history import record_from_events, start_info
from flowtide.client.replay import BadHistoryError, ReplayReport, load_history, record_by_replay, replay_history
from flowtide.workflows.contracts import AttemptFailure
from flowtide.workflows.engine.loops.workflow import FlowLoopWorkflow
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.kinds import KINDS, activity_kinds
from flowtide.workflows.language import without_newer_rules
from flowtide.workflows.language.dsl import parse_flow
from tests.support import changed_interpreters as changed
from tests.support.cli import flowtide
from tests.support.record_histories import CASES

CORPUS = Path(__file__).resolve().parents[1] / "histories"
INDEX: dict[str, Any] = json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in CORPUS.glob("*.json") if p.name != "index.json")
ERROR_PATHS = {"onError:stop-workflow", "onError:continue-workflow", "onError:retry-step", "onError:retry-workflow",
               "onError:next", "continueOnError", "skipCondition", "signal:timeout", "for-each:batched", "cancel",
               "rerun:from-failed", "retryPolicy", "execution:local", "for-each:failurePolicy", "for-each:adaptive",
               "rerun:failed-items", "circuitBreaker", "continue-as-new"}
REPLAY_LIMIT_S = 60  # a replay that does not end is a failure, not a hang


def load(name: str) -> WorkflowHistory:
    return load_history((CORPUS / name).read_text(encoding="utf-8"), Path(name).stem)


async def replay(history: WorkflowHistory, workflows: list[type] | None = None) -> ReplayReport:
    return await asyncio.wait_for(replay_history(history, workflows), REPLAY_LIMIT_S)


def has_activity(history: WorkflowHistory) -> bool:
    """A step activity, or a local one (a marker; a patch's marker is none)."""
    return any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED or
               (e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and
                e.marker_recorded_event_attributes.marker_name != "core_patch") for e in history.events)


@pytest.mark.parametrize("name", FILES)
async def test_every_recorded_history_replays_on_the_current_interpreter(name: str) -> None:
    report = await replay(load(name))
    assert report.ok, f"{name} no longer replays: {report.explanation}\nTemporal: {report.raw}"


@pytest.mark.parametrize("case", sorted(INDEX))
async def test_the_replayed_run_ends_as_recorded(case: str) -> None:
    history = load(INDEX[case]["files"][0])
    record = await asyncio.wait_for(record_by_replay(history), REPLAY_LIMIT_S)
    assert record is not None and record["status"] == INDEX[case]["status"]


# where a record rebuilt from events alone (no interpreter) differs from the replayed one, and why
FROM_EVENTS_DIFFERS = {
    "rerun-from-failed": "a reused step ran in the earlier run, not in this one's history",
    "rerun-failed-items": "a reused step ran in the earlier run, not in this one's history",
    "skip-condition": "a skipped step leaves no event",
    "on-error-retry-workflow": "every attempt of the restarted steps is its own row"}


@pytest.mark.parametrize("case", sorted(INDEX))
async def test_a_record_from_events_alone_lists_the_steps_that_ran_outside(case: str) -> None:
    """The fallback record (history only: no interpreter can replay it) has a row for every step that ran as an
    activity, regular or local, with the replayed record's status, attempts, output and error code."""
    history = load(INDEX[case]["files"][0])
    replayed = await asyncio.wait_for(record_by_replay(history), REPLAY_LIMIT_S)
    assert replayed is not None
    rebuilt = await record_from_events(history, DataConverter.default, status=INDEX[case]["status"])
    outside = set(activity_kinds())

    def rows(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((s["stepId"], s.get("iteration"), s["status"], s["attempts"], json.dumps(s["output"]),
                       (s.get("error") or {}).get("code")) for s in steps)
    want = rows([s for s in replayed["steps"] if s["stepType"] in outside])
    if case in FROM_EVENTS_DIFFERS:
        assert rows(rebuilt["steps"]) != want, f"{case} now agrees: drop it from FROM_EVENTS_DIFFERS"
        return
    assert rows(rebuilt["steps"]) == want
    if replayed["status"] == "failed" and want:
        assert rebuilt["firstFailedStep"] == replayed["firstFailedStep"]


def test_a_local_step_that_waits_for_a_backoff_timer_is_retrying_until_its_next_marker() -> None:
    """A local activity whose retry delay is longer than the local retry threshold records a marker with the
    failure and a ``backoff``, then a timer, then a new marker: one row, retrying in between."""
    history = load("http-local-activity.json")
    events = list(history.events)
    markers = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and
               e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    second = markers[1]
    data = json.loads(second.marker_recorded_event_attributes.details["data"].payloads[0].data)
    waiting = HistoryEvent()
    waiting.CopyFrom(second)
    attrs = waiting.marker_recorded_event_attributes
    attrs.details["data"].payloads[0].data = json.dumps({**data, "backoff": {"seconds": 90}}).encode()
    del attrs.details["result"]
    record = {"stepId": data["activity_id"], "stepType": "core.http", "type": "execution",
              "code": "HTTP_SERVER_ERROR", "message": "returned 503", "severity": "error", "retryable": True,
              "providerStatus": 503, "detail": None, "attempt": 1}
    failure = ApplicationError("returned 503", *AttemptFailure(record, {"status": 503}).encode(),
                               type="HTTP_SERVER_ERROR")
    asyncio.run(DataConverter.default.encode_failure(failure, attrs.failure))
    at = events.index(second)

    async def rebuilt(evs: list[HistoryEvent], status: str) -> dict[str, Any]:
        return await record_from_events(WorkflowHistory(history.workflow_id, evs), DataConverter.default,
                                        status=status)
    open_run = asyncio.run(rebuilt([*events[:at], waiting], "running"))
    row = [s for s in open_run["steps"] if s["stepId"] == data["activity_id"]]
    assert [(r["status"], r["error"]["code"], r["output"]) for r in row] == [("retrying", "HTTP_SERVER_ERROR",
                                                                              {"status": 503})]
    assert open_run["progress"]["done"] == 1  # the first step only
    closed = asyncio.run(rebuilt([*events[:at], waiting, *events[at:]], "completed"))
    row = [s for s in closed["steps"] if s["stepId"] == data["activity_id"]]
    assert [(r["status"], r["error"], r["output"]["status"]) for r in row] == [("completed", None, 200)]


def kinds_in(steps: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for s in steps:
        found.add(s["kind"])
        for block in (s.get("blocks") or {}).values():
            found |= kinds_in(block)
        inner = (s.get("input") or {}).get("flow")
        if isinstance(inner, dict):
            found |= kinds_in(inner.get("steps") or [])
    return found


async def test_the_corpus_covers_every_step_kind_and_error_path() -> None:
    covered = {c for entry in INDEX.values() for c in entry["covers"]}
    assert not set(KINDS) - covered, "step kinds without a recorded history"
    assert not ERROR_PATHS - covered, "error-handling paths without a recorded history"
    for case, entry in INDEX.items():  # the index does not merely claim it: the recorded flow has the kind
        info = await start_info(load(entry["files"][0]), DataConverter.default)
        claimed = {c for c in entry["covers"] if c in KINDS}
        try:  # a case may start the run with the document as written (either spelling), or an invalid one
            with without_newer_rules():  # the rules in force when it was recorded
                steps = parse_flow(info.flow).to_wire()["steps"]
        except FlowValidationError:
            steps = []
        assert claimed <= kinds_in(steps), case


def test_the_index_the_files_and_the_recorder_agree() -> None:
    listed = sorted(f for entry in INDEX.values() for f in entry["files"])
    assert listed == FILES, "a history without an index entry, or an entry without its file: record again"
    assert sorted(INDEX) == sorted(c.name for c in CASES), "a recorder case was added or removed: record again"


# ---- deliberately changed interpreters ------------------------------------------------------------
@pytest.mark.parametrize(("interpreter", "name", "words"), [
    (changed.SettleTimerInterpreter, "http.json",
     "At history event 5 the recorded run scheduled a step activity for step 'fetch-customer' (core.http), but the "
     "current interpreter starts a timer at that point"),
    (changed.RenamedActivityInterpreter, "on-error-stop.json",
     "The recorded run scheduled step 'fetch' here, but the current interpreter schedules step "
     "'corpus-on-error-stop.fetch' instead"),
    (changed.SkipsLaterStepsInterpreter, "sub-flow.json",
     "the recorded run started a child run (a sub-flow or a loop part), but the current interpreter updates the "
     "search attributes (a status change) at that point"),
    (changed.SettleTimerInterpreter, "http-local-activity.json",
     "The recorded run ran a local activity (its #1) where the current interpreter does not"),
])
async def test_a_changed_interpreter_fails_replay_and_says_why(interpreter: type, name: str, words: str) -> None:
    report = await replay(load(name), [interpreter, FlowLoopWorkflow])
    assert not report.ok
    assert report.explanation is not None and words in report.explanation, report.explanation
    assert report.raw is not None and "Nondeterminism" in report.raw


async def test_the_corpus_catches_a_changed_interpreter_on_every_run_with_a_step_activity() -> None:
    runs = [n for n in FILES if ".child-" not in n and has_activity(load(n))]
    reports = {n: await replay(load(n), [changed.SettleTimerInterpreter, FlowLoopWorkflow]) for n in runs}
    assert len(runs) >= 20
    assert [n for n, r in reports.items() if r.ok] == []


async def test_flowtide_replay_reports_a_changed_interpreter_in_plain_words(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await flowtide(capsys, "replay", "--history", str(CORPUS / "sub-flow.json"))
    assert code == 0 and "OK, the current interpreter makes the same decisions" in out  # child ids: workflow id
    monkeypatch.setattr("flowtide.client.replay.default_workflows",
                        lambda: [changed.RenamedActivityInterpreter, FlowLoopWorkflow])
    code, out, _ = await flowtide(capsys, "replay", "--history", str(CORPUS / "http.json"))
    assert code == 1
    assert "NOT DETERMINISTIC" in out and "scheduled step 'fetch-customer' here" in out
    assert "workflow.patched()" in out


# ---- histories the core cannot take: refused at once, never a hang --------------------------------
def renumbered(events: list[HistoryEvent]) -> list[HistoryEvent]:
    out = []
    for i, e in enumerate(events, 1):
        copy = HistoryEvent()
        copy.CopyFrom(e)
        copy.event_id = i
        out.append(copy)
    return out


@pytest.mark.parametrize(("cut", "words"), [
    (lambda ev: [], "it has no events"),
    (lambda ev: ev[1:], "events[0] must be a WorkflowExecutionStarted event"),
    (lambda ev: ev[:1], "only its start event"),
    (lambda ev: [ev[0], *ev[:0:-1]], "events missing, repeated or out of order"),
    (lambda ev: renumbered([ev[0], *ev[:0:-1]]), "not by its outcome"),
])
async def test_a_malformed_history_is_refused_before_the_replayer_sees_it(cut: Any, words: str) -> None:
    history = load("http.json")
    with pytest.raises(BadHistoryError, match=words.replace("[", r"\[").replace("]", r"\]")):
        await replay(WorkflowHistory(history.workflow_id, cut(list(history.events))))
    assert await record_by_replay(WorkflowHistory(history.workflow_id, cut(list(history.events)))) is None
