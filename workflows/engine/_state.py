"""Run state kept by the interpreter: step records, ``$errors``, the template scope, the run record.

Pure data handling, no Temporal calls, so it is easy to test and cheap to replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowtide.workflows.contracts import ErrorRecord, RunRecord, StepRow, StepStatus, WireStep
from flowtide.workflows.kinds import KINDS

RECORD_BUDGET_BYTES = 1_500_000  # the run record must fit Temporal's 2 MiB payload limit
PREVIEW_BYTES = 4096

TERMINAL_STEP_STATUSES = frozenset({"completed", "warning", "failed", "skipped", "cancelled"})


@dataclass
class Frame:
    """One execution scope: the whole run, or one loop iteration (with its own step outputs)."""

    scope: dict[str, Any]
    iteration: int | None = None
    suffix: str = ""  # appended to activity ids: "" or "#3" or "#3.1"
    parent: Frame | None = None
    failures: int = 0  # failed steps in this frame (absorbed or not): an iteration with any failed
    last_output: Any = None  # the output of the last step that finished in this frame
    first_error: ErrorRecord | None = None
    throttled: int = 0  # rate-limit answers the provider gave this frame's steps (retried attempts included)
    # an adaptive loop's item: its steps' retried rate-limit answers travel in activity heartbeats, so they
    # stay regular activities (workflows.placement)
    heartbeats: bool = False

    def child(self, index: int, item: Any) -> Frame:
        scope = dict(self.scope)
        scope["$item"] = item
        scope["$index"] = index
        suffix = f"{self.suffix}.{index}" if self.suffix else f"#{index}"
        return Frame(scope=scope, iteration=index, suffix=suffix, parent=self, heartbeats=self.heartbeats)


def step_entry(output: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """What ``{{ step-id... }}`` sees: the output's keys, ``output`` (whole output) and ``$meta``."""
    entry: dict[str, Any] = dict(output) if isinstance(output, dict) else {}
    entry["output"] = output
    entry["$meta"] = meta
    return entry


def new_meta() -> dict[str, Any]:
    return {"success": True, "skipped": False, "operationalStatus": "ok", "error": None,
            "operationalErrors": [], "attempts": 0, "durationMs": 0}


@dataclass
class RunState:
    """Everything the run record is built from."""

    flow: dict[str, Any]
    errors: list[ErrorRecord] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    output: Any = None
    webhook_response: Any = None
    first_failed: str | None = None
    run_error: ErrorRecord | None = None
    status: str = "running"
    executions: int = 0
    run_counts: dict[str, int] = field(default_factory=dict)
    total_steps: int = 0
    loops: dict[str, dict[str, Any]] = field(default_factory=dict)
    # step rows of earlier runs of a continued-as-new chain that the record no longer lists, as counts
    # ({"rows", "counts", "done": [step ids]}); see workflows.engine._continue_as_new
    earlier: dict[str, Any] = field(default_factory=dict)
    chain: dict[str, Any] = field(default_factory=dict)  # {"runs", "currentRunId"} once the run continued
    _done: _DoneSteps | None = field(default=None, init=False, repr=False, compare=False)

    def begin(self, step: WireStep, frame: Frame, now: datetime, inp: Any = None) -> StepRow:
        rec: StepRow = {
            "stepId": step["id"], "stepType": step["kind"], "title": step.get("title") or step["id"],
            "iteration": frame.iteration, "status": "running", "attempts": 0,
            "startedAt": now.isoformat(), "completedAt": None, "durationMs": None,
            "input": inp, "output": None, "console": [], "error": None, "warnings": [],
        }
        if frame.suffix:
            rec["path"] = frame.suffix
        self.steps.append(rec)
        return rec

    def close_open_rows(self, now: datetime, status: StepStatus, blocks: StepStatus) -> None:
        """Close the rows still open when the run ends: a step that holds blocks (if, for-each) ended with the
        run (``blocks``: the run's outcome); any other was left behind in flight (``status``, say cancelled)."""
        for s in self.steps:
            if s["status"] in ("running", "retrying"):
                s["status"] = blocks if KINDS[s["stepType"]].blocks else status
                s["completedAt"] = now.isoformat()
                s["durationMs"] = int((now - datetime.fromisoformat(s["startedAt"])).total_seconds() * 1000)

    def add_error(self, record: ErrorRecord) -> None:
        self.errors.append(record)
        if record.get("severity") == "error" and self.first_failed is None:
            self.first_failed = record.get("stepId")

    def first_failed_step(self) -> str | None:
        """The root cause: the first failure nothing absorbed, else the first failure at all."""
        for e in self.errors:
            if e.get("severity") == "error" and not e.get("absorbed") and e.get("stepId"):
                return str(e["stepId"])
        return self.first_failed

    def counts(self) -> dict[str, int]:
        c = {"completed": 0, "failed": 0, "skipped": 0, "warning": 0, "running": 0, "cancelled": 0}
        for s in self.steps:
            # a loop's iterations count as its items (below), as they do when the loop runs in child runs
            if not s.get("retried") and "path" not in s:
                c[s["status"]] = c.get(s["status"], 0) + 1
        for loop in self.loops.values():
            c["completed"] += loop.get("succeeded", 0)
            c["failed"] += loop.get("failed", 0)
        for status, n in (self.earlier.get("counts") or {}).items():
            c[status] = c.get(status, 0) + int(n)
        return c

    def summarise_rows(self, keep: int) -> None:
        """Fold all but the newest ``keep`` finished step rows into ``earlier`` (counts stay exact)."""
        cut = max(0, len(self.steps) - keep)
        while cut > 0 and self.steps[cut - 1]["status"] not in TERMINAL_STEP_STATUSES:
            cut -= 1  # never fold a row that is still open (cannot happen between top-level steps)
        if cut == 0:
            return
        counts: dict[str, int] = dict(self.earlier.get("counts") or {})
        done = set(self.earlier.get("done") or [])
        for row in self.steps[:cut]:
            done.add(row["stepId"])
            if not row.get("retried") and "path" not in row:
                counts[row["status"]] = counts.get(row["status"], 0) + 1
        self.earlier = {"rows": int(self.earlier.get("rows") or 0) + cut, "counts": counts, "done": sorted(done)}
        del self.steps[:cut]

    def progress(self) -> dict[str, int]:
        """Steps done (distinct step ids with a finished row, here or folded into ``earlier``) of the total.

        Asked once per step: kept incrementally (``_DoneSteps``), so it costs the rows added since the
        last call and the rows still open, not every row of the run.
        """
        tally = self._done
        if tally is None or tally.rows is not self.steps or tally.earlier is not self.earlier:
            tally = self._done = _DoneSteps(self.steps, self.earlier)  # rows replaced or folded: count again
        n = tally.count()
        return {"done": n, "total": max(self.total_steps, n)}

    def record(self, info: dict[str, Any], now: datetime) -> RunRecord:
        """The run record of docs/runs.md (bounded to fit one Temporal payload)."""
        started = info["startedAt"]
        done = self.status not in ("running", "waiting", "paused")
        rec: RunRecord = {
            "runId": info["runId"], "workflowId": info["workflowId"], "flowId": self.flow.get("id"),
            "flowVersion": self.flow.get("version", 1), "status": self.status,
            "startedAt": started.isoformat(), "completedAt": now.isoformat() if done else None,
            "durationMs": int((now - started).total_seconds() * 1000),
            "progress": self.progress(), "counts": self.counts(),
            "firstFailedStep": self.first_failed_step(), "error": self.run_error, "errors": self.errors,
            "output": self.output, "webhookResponse": self.webhook_response,
            "steps": self.steps, "loops": list(self.loops.values()),
            "attempt": info.get("attempt", 1), "rerunOf": info.get("rerunOf"),
        }
        if self.chain:  # only a run that continued as new: other records stay as they were
            rec["chain"] = dict(self.chain, stepExecutions=self.executions)
        if self.earlier.get("rows"):
            rec["stepsSummarised"] = {"rows": self.earlier["rows"], "counts": self.earlier["counts"]}
        return fit_record(rec)


class _DoneSteps:
    """The distinct step ids of finished rows, caught up with the rows list on each ``count()``.

    Rows are only appended (``RunState.begin``) and a row, once finished, stays finished; the rows list is
    replaced or cut at the front only together with ``earlier`` (``summarise_rows``, continue-as-new), which
    makes ``RunState.progress`` start a new tally. So each call looks at the new rows and at the rows that
    were still open at the last call (a handful: the running step, its enclosing loops and parallel items).
    """

    def __init__(self, rows: list[StepRow], earlier: dict[str, Any]) -> None:
        self.rows, self.earlier = rows, earlier
        self.ids: set[str] = set(earlier.get("done") or ())
        self.seen = 0
        self.open: list[StepRow] = []

    def count(self) -> int:
        fresh = self.rows[self.seen:]
        self.seen = len(self.rows)
        still: list[StepRow] = []
        for row in (*self.open, *fresh):
            if row["status"] in TERMINAL_STEP_STATUSES:
                self.ids.add(row["stepId"])
            else:
                still.append(row)
        self.open = still
        return len(self.ids)


class _Sizer:
    """The compact-JSON size of values, each container measured once.

    A record can hold the same object many times (a set-variable step that keeps ``{{ initial.items }}``
    shares the payload with the trigger): its JSON repeats the object, but measuring it again would cost
    the whole repeated length each time. Memoised by identity, so only valid while the values are alive
    and unchanged (one ``fit_record`` call).
    """

    def __init__(self) -> None:
        self._memo: dict[int, int] = {}

    def __call__(self, value: Any) -> int:
        t = type(value)
        if t is not dict and t is not list:
            return len(_leaf(value))
        memo = self._memo
        size = memo.get(id(value))
        if size is None:
            self._measure(value)
            size = memo[id(value)]
        return size

    def _measure(self, root: dict[str, Any] | list[Any]) -> None:
        """Fill the memo for ``root`` and every container below it, without recursion (deep data is data)."""
        memo = self._memo
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in memo:
                continue
            children = node.values() if type(node) is dict else node
            if not ready:
                stack.append((node, True))
                stack.extend((c, False) for c in children if (type(c) is dict or type(c) is list)
                             and id(c) not in memo)
                continue
            total = sum(memo[id(c)] if type(c) is dict or type(c) is list else len(_leaf(c)) for c in children)
            if type(node) is dict:
                n = len(node)  # braces, n colons, n - 1 commas
                memo[id(node)] = 2 + max(0, 2 * n - 1) + total + sum(len(_encode_str(str(k))) for k in node)
            else:
                memo[id(node)] = 1 + max(1, len(node)) + total


_encode_str: Callable[[str], str] = getattr(json.encoder, "c_encode_basestring_ascii", None) or \
    json.encoder.encode_basestring_ascii  # what json.dumps uses for strings (ensure_ascii), without its setup


def _leaf(value: Any) -> str:
    """The compact JSON of a scalar (``json.dumps`` semantics, at a fraction of its per-call cost)."""
    t = type(value)
    if t is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return int.__repr__(value)
    if t is float and value == value and value not in (float("inf"), float("-inf")):
        return float.__repr__(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def _json_chunks(value: Any) -> Iterator[str]:
    """``value``'s compact JSON, piece by piece (a reader can stop early without encoding the rest)."""
    t = type(value)
    if t is dict and value:
        sep = "{"
        for k, v in value.items():
            yield sep + _encode_str(str(k)) + ":"
            yield from _json_chunks(v)
            sep = ","
        yield "}"
    elif t is list and value:
        sep = "["
        for v in value:
            yield sep
            yield from _json_chunks(v)
            sep = ","
        yield "]"
    elif t is dict or t is list:
        yield "{}" if t is dict else "[]"
    else:
        yield _leaf(value)


def _json_prefix(value: Any, limit: int) -> str:
    """The first ``limit`` characters of ``value``'s compact JSON, built without encoding the rest."""
    out: list[str] = []
    used = 0
    for piece in _json_chunks(value):
        if used >= limit:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)[:limit]


def _preview(value: Any, size: int) -> dict[str, Any]:
    try:
        preview = _json_prefix(value, PREVIEW_BYTES)
    except RecursionError:
        preview = "(nests too deeply to preview)"
    return {"$truncated": True, "bytes": size, "preview": preview}


def json_size(value: Any) -> int:
    """The compact-JSON size of ``value`` in characters (no string is built; deep nesting is fine)."""
    return _Sizer()(value)


def fit_record(rec: RunRecord, budget: int = RECORD_BUDGET_BYTES) -> RunRecord:
    """Shrink the largest step inputs/outputs to previews until the record fits ``budget``."""
    size = _Sizer()
    total = size(rec)
    if total <= budget:
        return rec
    steps: list[Any] = [dict(s) for s in rec["steps"]]
    sized = sorted(((max(size(s.get("output")), size(s.get("input"))), i) for i, s in enumerate(steps)),
                   reverse=True)
    for largest, i in sized:
        if total <= budget or largest <= PREVIEW_BYTES:
            break
        for key in ("output", "input"):
            before = size(steps[i].get(key))
            if before > PREVIEW_BYTES:
                steps[i][key] = _preview(steps[i][key], before)
                total -= before - size(steps[i][key])
    out: Any = dict(rec, steps=steps)
    if total > budget:  # still too large: keep the newest step rows only, say so
        keep = max(1, len(steps) // 4)
        out["steps"] = steps[-keep:]
        out["stepsTruncated"] = len(steps) - keep
    output_size = size(out.get("output"))
    if output_size > budget // 2:
        out["output"] = _preview(out["output"], output_size)
    fitted: RunRecord = out
    return fitted
