"""Mocked step activities for ``flowtide test``: the real engine runs, the outside world answers from a table.

One activity per outside-world kind, registered under the kind's own activity type, answers from the test
case's mocks and goes through the same boundary (``_boundary.execute``) as the real one, so a mocked 503 or
an error by taxonomy code fails, is retried, absorbed or routed exactly as in production.

A mock is found by the activity id (``charge#2`` in a loop), then by the step id, then (``core.http``) by
``"METHOD URL-pattern"`` or ``"URL-pattern"`` (``*`` and ``?`` as in shell patterns). Its value is one answer
for every call, or a list of answers, one per call in order (the last one repeats). An answer is:

* ``{status, headers?, body?}``: an HTTP answer; a status of 400 or more (not in ``okStatuses``) fails like
  the real step (``HTTP_SERVER_ERROR``, ``HTTP_RATE_LIMITED`` with ``Retry-After``, ...);
* ``{error: CODE, message?, retryable?}``: a failure with that taxonomy code, for any kind;
* ``{output: VALUE}``: the step's output, for any kind (LLM, e-mail, data store, code results...); for
  ``core.code`` it is the script's return value, so ``{$error: {code, message}}`` in it fails the step with the
  script's own code (custom retry mode) and ``$warning`` adds warnings, as in production.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
from temporalio import activity

from flowtide.activities._boundary import REGISTERED, execute
from flowtide.activities._http_errors import status_failure
from flowtide.activities._step import StepContext, StepResult
from flowtide.activities.code import script_result
from flowtide.workflows.contracts import ActivityTask
from flowtide.workflows.errors import TAXONOMY, StepFailure

HTTP = "core.http"
CODE = "core.code"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_ANSWER_KEYS = frozenset({"status", "headers", "body", "error", "message", "retryable", "output"})


def is_pattern(key: str) -> bool:
    """A key that matches HTTP calls by method and URL rather than a step by id."""
    return "://" in key or (" " in key and key.split(" ", 1)[0].upper() in _METHODS)


def answer_problems(value: Any, where: str) -> list[str]:
    """What is wrong with a mock's value (one answer or a list of them), each naming ``where``."""
    answers = value if isinstance(value, list) else [value]
    if not answers:
        return [f"{where}: an empty list of answers"]
    problems: list[str] = []
    for i, answer in enumerate(answers):
        at = f"{where}[{i}]" if isinstance(value, list) else where
        if not isinstance(answer, dict):
            problems.append(f"{at}: an answer is a mapping ({{status: ...}}, {{error: CODE}} or {{output: ...}})")
            continue
        unknown = sorted(set(answer) - _ANSWER_KEYS)
        if unknown:
            problems.append(f"{at}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_ANSWER_KEYS))})")
        if not {"status", "error", "output"} & set(answer):
            problems.append(f"{at}: give one of status, error or output")
        if "status" in answer and not (isinstance(answer["status"], int) and 100 <= answer["status"] <= 599):
            problems.append(f"{at}.status: an HTTP status from 100 to 599, got {answer['status']!r}")
        if "error" in answer and answer["error"] not in TAXONOMY:
            problems.append(f"{at}.error: {answer['error']!r} is not a taxonomy code (see `flowtide codes`)")
        if "headers" in answer and not isinstance(answer["headers"], dict):
            problems.append(f"{at}.headers: a mapping of header names to values")
    return problems


class MockTable:
    """The mocks of one test case, and the calls each step made."""

    def __init__(self, mocks: dict[str, Any], *, allow_network: bool = False) -> None:
        self.mocks = mocks
        self.allow_network = allow_network
        self.calls: Counter[str] = Counter()  # mock key -> calls answered

    def key_for(self, kind: str, task: dict[str, Any], activity_id: str) -> str | None:
        """The mock key that answers this call, or None."""
        for key in (activity_id, task.get("stepId")):
            if key in self.mocks and not is_pattern(str(key)):
                return str(key)
        if kind != HTTP:
            return None
        inp = task.get("input") or {}
        method, url = str(inp.get("method") or "GET").upper(), str(inp.get("url") or "")
        for key in self.mocks:
            if not is_pattern(key):
                continue
            verb, _, pattern = key.partition(" ") if " " in key else ("", "", key)
            if (not verb or verb.upper() == method) and fnmatch.fnmatchcase(url, pattern.strip()):
                return key
        return None

    def next_answer(self, key: str) -> dict[str, Any]:
        """The answer for this call of ``key`` (a list answers in order; its last answer repeats)."""
        value = self.mocks[key]
        n = self.calls[key]
        self.calls[key] += 1
        return cast(dict[str, Any], value[min(n, len(value) - 1)] if isinstance(value, list) else value)


def answer_result(kind: str, answer: dict[str, Any], inp: dict[str, Any]) -> StepResult:
    """The step's result for one mocked answer, or the ``StepFailure`` the real step would raise."""
    if "error" in answer:
        code = str(answer["error"])
        raise StepFailure(code, str(answer.get("message") or f"mocked {code}"), retryable=answer.get("retryable"),
                          output=answer.get("output"))
    if "status" not in answer:  # a code step's output is its script's return: `$error` / `$warning` act
        return script_result(answer.get("output")) if kind == CODE else StepResult(answer.get("output"))
    status = int(answer["status"])
    headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
    output = {"status": status, "headers": headers, "body": answer.get("body")}
    ok = {int(s) for s in inp.get("okStatuses") or [] if str(s).isdigit()}
    if status >= 400 and status not in ok:
        method, url = str(inp.get("method") or "GET").upper(), str(inp.get("url") or "")
        raise status_failure(method, url, httpx.Response(status, headers=headers), output, "mocked answer")
    return StepResult(output)


def _no_mapping(exc: BaseException) -> StepFailure | None:
    return None


def _mocked(kind: str, table: MockTable) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    real = REGISTERED[kind]

    async def run(task: dict[str, Any]) -> dict[str, Any]:
        key = table.key_for(kind, task, activity.info().activity_id)
        if key is None and table.allow_network:
            return cast(dict[str, Any], await real(task))

        async def impl(inp: dict[str, Any], ctx: StepContext) -> StepResult:
            if key is None:
                raise StepFailure("MOCK_MISSING", f"step '{ctx.step_id}' ({kind}) has no mock: add one under "
                                  f"`mocks: {{{ctx.step_id}: ...}}` or run with --allow-network", retryable=False)
            if kind == HTTP:  # as the real step does: the boundary applies the POST/PATCH retry rule with it
                ctx.method = str(inp.get("method") or "GET").upper()
            return answer_result(kind, table.next_answer(key), inp)

        return dict(await execute(kind, impl, _no_mapping, cast(ActivityTask, task), outside=False))

    run.__name__ = f"mocked_{kind.replace('.', '_').replace('-', '_')}"
    return activity.defn(name=kind)(run)


def mocked_activities(table: MockTable) -> list[Callable[..., Any]]:
    """One mocked activity per outside-world kind, for ``Worker(activities=...)``."""
    return [_mocked(kind, table) for kind in sorted(REGISTERED)]
