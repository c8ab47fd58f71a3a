"""The activity boundary: every step activity runs through ``execute``.

It resolves secrets at the moment of use, enforces the attempt timeout and the output limit, turns any
exception into the one error record (through the family's mapper), redacts secret values from everything
it returns, and raises ``ApplicationError(type=<code>)`` with the retry decision of ``workflows.retry``.

Task (activity input, built by the interpreter)::

    {"stepId", "stepType", "title", "input", "timeout", "retry": RetrySettings.to_dict(),
     "runId", "workflowId", "iteration", "limits": {"outputBytes": ...}, "connection"?: NAME}

Result on success: ``{"output", "warnings": [error records], "console": [lines], "attempt"}``.
On failure: ``ApplicationError(message, record, output, console, type=code, non_retryable=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from flowtide.activities import metrics
from flowtide.activities._secrets import redact, resolve_secrets
from flowtide.activities._step import DEFAULT_OUTPUT_LIMIT, Mapper, StepContext, StepImpl, StepResult
from flowtide.activities.connection.apply import with_connection
from flowtide.store import breakers
from flowtide.workflows.contracts import (
    WORKER_STOPPING,
    ActivityResult,
    ActivityTask,
    AttemptFailure,
    failure_to_record,
)
from flowtide.workflows.errors import StepFailure, wire_text
from flowtide.workflows.language import json_problem
from flowtide.workflows.retry import RetrySettings, is_retryable

log = structlog.get_logger("flowtide.activity")
# How long a local attempt in flight may go on once its worker stops (the worker's graceful shutdown, set per
# activity by ``StopGrace``, which ``worker.app`` installs); unset: until it ends. Past it the attempt is
# abandoned and the step starts again on the next worker, as after a crash (a local step is safe to repeat).
STOP_GRACE_S: contextvars.ContextVar[float | None] = contextvars.ContextVar("flowtide_stop_grace_s", default=None)

CONSOLE_MAX_LINES = 100
CONSOLE_MAX_BYTES = 10 * 1024


def clip_console(lines: list[str]) -> list[str]:
    """Keep at most 100 lines / 10 KB of console output and say when it was cut."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if i >= CONSOLE_MAX_LINES or size + len(line) > CONSOLE_MAX_BYTES:
            out.append(f"[console truncated: {len(lines) - i} more line(s) not kept; limit "
                       f"{CONSOLE_MAX_LINES} lines / {CONSOLE_MAX_BYTES // 1024} KB]")
            break
        out.append(line)
        size += len(line)
    return out


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


async def _heartbeat_while(task: asyncio.Task[Any], throttled: int) -> None:
    while not task.done():
        await asyncio.sleep(1.0)
        activity.heartbeat(throttled)  # keeps the count of rate-limit answers for the next attempt


def _throttled_before(info: activity.Info) -> int:
    """Rate-limit answers of this call's earlier attempts: each failed attempt heartbeats the count, and
    Temporal hands the last heartbeat's details to the next attempt (an adaptive loop slows down on it)."""
    try:
        return int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    except (TypeError, ValueError):
        return 0


def _retry_after_seen(output: Any) -> bool:
    headers = output.get("headers") if isinstance(output, dict) else None
    return isinstance(headers, dict) and any(str(k).lower() == "retry-after" for k in headers)


async def execute(kind: str, impl: StepImpl, mapper: Mapper, task: ActivityTask, *,
                  outside: bool = True) -> ActivityResult:
    """Run one attempt of a step through the boundary (see module docstring).

    ``outside=False`` (a mocked step of ``flowtide test``): no secret, connection or circuit breaker is
    looked up, since the step reaches nothing; its answer and failure take exactly the same path.
    """
    info = activity.info()
    if info.is_local and activity.is_worker_shutdown():
        # a stopping worker starts no new local step: the run's workflow task would otherwise go on from local
        # step to local step, and the worker would stop only when the flow waits for something
        raise _stopping(task, "was not started")
    settings = RetrySettings.from_dict(task["retry"])
    ctx = StepContext(
        step_id=task["stepId"], step_type=kind, title=task.get("title") or task["stepId"],
        run_id=task.get("runId", ""), workflow_id=task.get("workflowId", ""),
        iteration=task.get("iteration"), attempt=info.attempt, timeout_s=float(task.get("timeout") or 30),
        retry=settings, limits=task.get("limits") or {}, project=task.get("project"),
    )
    bound = log.bind(step_id=ctx.step_id, kind=kind, attempt=ctx.attempt, workflow_id=ctx.workflow_id)
    metrics.attempt_started(kind, ctx.attempt)
    output: Any = None
    throttled = _throttled_before(info)
    ticket: breakers.Ticket | None = None
    try:
        raw = task.get("input") or {}
        inp = resolve_secrets(raw, ctx.secrets, task.get("secretNonce"), ctx.project) if outside else dict(raw)
        step = with_connection(impl, task["connection"], task.get("project")) if task.get("connection") and outside \
            else impl
        if task.get("circuitBreaker") and outside:  # may fail the attempt at once with CIRCUIT_OPEN
            key = breakers.breaker_key(kind, inp, task.get("project"), task.get("connection"))
            cfg = breakers.config_for(key, task["circuitBreaker"], task.get("project"))
            ticket = await breakers.enter_async(key, cfg, ctx.timeout_s + 10)
        work = asyncio.ensure_future(_guarded(step, inp, ctx))
        beat = asyncio.ensure_future(_heartbeat_while(work, throttled)) if info.heartbeat_timeout else None
        try:
            result = await asyncio.wait_for(_unless_stopped(work, info.is_local), timeout=ctx.timeout_s)
        except TimeoutError:
            raise StepFailure("TIMEOUT", f"step '{ctx.step_id}' exceeded its timeout of {ctx.timeout_s:g}s",
                              type="execution") from None
        finally:
            if beat is not None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
        limit = int(ctx.limits.get("outputBytes") or DEFAULT_OUTPUT_LIMIT)
        size = _json_size(result.output)
        if size > limit:
            raise StepFailure("OUTPUT_TOO_LARGE", f"step output is {size} bytes, over the limit of {limit} bytes",
                              detail="raise settings.limits.outputBytes or return less data")
        problem = json_problem(result.output, "output")
        if problem is not None:  # NaN, Infinity, a 5,000-digit number...: refused where it enters the run
            raise StepFailure("VALIDATION_ERROR", f"the step's answer is not plain JSON: {problem}",
                              detail="JSON has no NaN or Infinity; see docs/security.md (bounded values)")
    except asyncio.CancelledError:
        raise
    except _WorkerStopped:  # not an outcome of the step: the engine starts it again on the next worker
        raise _stopping(task, "was stopped with its worker") from None
    except Exception as exc:
        inner = exc.inner if isinstance(exc, _StepRaisedTimeout) else exc
        failure = inner if isinstance(inner, StepFailure) else _map(mapper, inner)
        await breakers.leave_async(ticket, failure.code)
        secrets = list(ctx.secrets.values())
        retryable = failure.retryable if failure.retryable is not None else is_retryable(
            failure.code, settings, method=ctx.method, user_code=failure.user_code,
            provider_status=failure.provider_status)
        record = redact(failure_to_record(failure, step_id=ctx.step_id, step_type=kind,
                                          retryable=retryable, attempt=ctx.attempt,
                                          iteration=ctx.iteration), secrets)
        output = redact(failure.output, secrets)
        if output is not None and json_problem(output) is not None:
            output = None  # a failed answer's body that is not plain JSON does not enter the run either
        if output is not None and _json_size(output) > int(ctx.limits.get("outputBytes") or DEFAULT_OUTPUT_LIMIT):
            output = None
        console = redact(clip_console(ctx.console), secrets)
        metrics.attempt_failed(kind, failure.code, retryable)
        bound.info("step attempt failed", code=failure.code, retryable=retryable,
                      message=record["message"])
        delay = timedelta(seconds=failure.retry_after_s) if failure.retry_after_s and retryable else None
        if (record["class"] == "rate-limit" or failure.retry_after_s) and retryable and info.heartbeat_timeout:
            activity.heartbeat(throttled + 1)
        # Classified failures are expected outcomes, not worker bugs: BENIGN keeps the SDK from logging a
        # traceback per attempt. Unmapped exceptions (UNKNOWN_ERROR) stay loud.
        category = (ApplicationErrorCategory.UNSPECIFIED if failure.code == "UNKNOWN_ERROR"
                    else ApplicationErrorCategory.BENIGN)
        raise ApplicationError(wire_text(record["message"]), *AttemptFailure(record, output, console).encode(),
                               type=failure.code,
                               non_retryable=not retryable, next_retry_delay=delay, category=category) from None
    await breakers.leave_async(ticket, None)
    secrets = list(ctx.secrets.values())
    warnings = [redact(failure_to_record(w, step_id=ctx.step_id, step_type=kind, retryable=False,
                                         attempt=ctx.attempt, iteration=ctx.iteration), secrets)
                for w in result.warnings]
    for w in warnings:
        w["severity"] = "warning"
    done: ActivityResult = {"output": redact(result.output, secrets), "warnings": warnings,
                            "console": redact(clip_console(ctx.console), secrets), "attempt": ctx.attempt}
    throttled += int(_retry_after_seen(result.output))
    if throttled:  # only then: the results of recorded histories keep their exact shape
        done["throttled"] = throttled
    return done


class StopGrace(Interceptor):
    """Tells every activity of the worker its graceful shutdown: a local step still running that long after
    the worker began to stop is abandoned and starts again on the next worker (``_unless_stopped``)."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _GraceInbound(next, self.grace_s)


class _GraceInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, grace_s: float) -> None:
        super().__init__(next)
        self.grace_s = grace_s

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        token = STOP_GRACE_S.set(self.grace_s)  # the activity's own task: no other activity sees it
        try:
            return await super().execute_activity(input)
        finally:
            STOP_GRACE_S.reset(token)


def _stopping(task: ActivityTask, what: str) -> ApplicationError:
    """The refusal the engine answers by starting the step again on the next worker (contracts.WORKER_STOPPING)."""
    return ApplicationError(f"step '{task['stepId']}' {what}: this worker is stopping", type=WORKER_STOPPING,
                            non_retryable=True, category=ApplicationErrorCategory.BENIGN)


class _WorkerStopped(Exception):  # noqa: N818
    """A local attempt outlived its worker's graceful shutdown."""


async def _unless_stopped(work: asyncio.Future[StepResult], local: bool) -> StepResult:
    """``work``'s result; for a local attempt, unless its worker has been stopping for longer than its grace
    (``STOP_GRACE_S``): then ``work`` is cancelled and ``_WorkerStopped`` raised."""
    grace = STOP_GRACE_S.get()
    if not local or grace is None:
        return await work

    async def stopped() -> None:
        await activity.wait_for_worker_shutdown()
        await asyncio.sleep(grace)
    stop = asyncio.ensure_future(stopped())
    either: set[asyncio.Future[Any]] = {work, stop}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the attempt's timeout or a cancel: the work goes with it
        work.cancel()
        raise
    finally:
        stop.cancel()
    if work.done():
        return work.result()
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await work
    raise _WorkerStopped


class _StepRaisedTimeout(Exception):  # noqa: N818
    """A TimeoutError the step itself raised (a provider timeout), told apart from the step timeout."""

    def __init__(self, inner: TimeoutError) -> None:
        super().__init__(str(inner))
        self.inner = inner


async def _guarded(impl: StepImpl, inp: dict[str, Any], ctx: StepContext) -> StepResult:
    try:
        return await impl(inp, ctx)
    except TimeoutError as exc:
        raise _StepRaisedTimeout(exc) from exc


def _map(mapper: Mapper, exc: BaseException) -> StepFailure:
    mapped = mapper(exc)
    if mapped is not None:
        return mapped
    return StepFailure("UNKNOWN_ERROR", f"{type(exc).__name__}: {exc}", detail=repr(exc)[:2048])


# kind -> its activity, filled by ``step_activity`` as the family modules are imported (see activities/__init__)
REGISTERED: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}


def step_activity(kind: str, mapper: Mapper) -> Callable[[StepImpl], Callable[[dict[str, Any]], Awaitable[Any]]]:
    """Make ``impl`` the Temporal activity for ``kind`` (activity type = kind) and register it."""

    def deco(impl: StepImpl) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        # The argument's hint stays a plain dict: the SDK converts arguments by their hints, and a recorded
        # task must reach the step exactly as it was sent (contracts.ActivityTask describes it).
        async def run(task: dict[str, Any]) -> dict[str, Any]:
            return dict(await execute(kind, impl, mapper, cast(ActivityTask, task)))

        run.__name__ = impl.__name__
        run.__doc__ = impl.__doc__
        if kind in REGISTERED:
            raise RuntimeError(f"two activities for step kind {kind!r}: {REGISTERED[kind].__name__}, {impl.__name__}")
        REGISTERED[kind] = defined = activity.defn(name=kind)(run)
        return defined

    return deco
