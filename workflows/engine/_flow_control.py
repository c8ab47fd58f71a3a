"""Control-flow signals of the interpreter and the translation of activity failures into step failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
    TimeoutError,
)

from flowtide.workflows.contracts import AttemptFailure, ErrorRecord, WireStep
from flowtide.workflows.errors import LimitError, StepFailure, TemplateError, classify


@dataclass
class Outcome:
    """Where the run goes after a step: graph targets, or (list style) the step id to jump to."""

    next: list[str] = field(default_factory=list)
    goto: str | None = None


class ControlSignal(Exception):  # noqa: N818 - not an error: how the interpreter unwinds to a block or the run
    """Base of the interpreter's own control flow; the step boundary lets these through untouched."""


class Halt(ControlSignal):
    """A step failed and nothing absorbed it: the run fails with ``record``."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.get("message"))
        self.record = record


class BudgetSpent(Halt):
    """The run's step budget is spent (``STEP_BUDGET_EXCEEDED``): no step may run, and no ``continueOnError``
    of a loop absorbs it."""


class RetryWorkflow(ControlSignal):
    """``onError: retry-workflow``: restart from the entry step with state cleared."""


class ReturnNow(ControlSignal):
    """``core.return`` ended the run."""


class StopFlow(ControlSignal):
    """A ``stop-workflow`` routing word ended the run."""


def failure_from_exception(exc: Exception) -> StepFailure:
    """The step boundary's word for an exception that step code raised although it should not have.

    Deep data and oversized numbers are the data's fault (``VALIDATION_ERROR``); anything else is a bug of
    ours (``INTERNAL_ERROR`` naming the exception). Either way the step fails like any other step, so
    ``continueOnError`` and ``onError`` apply and the run never hangs on a failing workflow task.
    """
    if isinstance(exc, RecursionError):
        return StepFailure("VALIDATION_ERROR", "the step's data nests too deeply to be processed",
                           retryable=False)
    if isinstance(exc, OverflowError):
        return StepFailure("VALIDATION_ERROR", f"a number is out of range: {str(exc)[:300]}", retryable=False)
    if isinstance(exc, LimitError):
        return StepFailure(exc.code, str(exc), retryable=False)
    if isinstance(exc, TemplateError):
        return StepFailure("TEMPLATE_ERROR", str(exc), retryable=False)
    return StepFailure("INTERNAL_ERROR", f"{type(exc).__name__}: {str(exc)[:500]}", retryable=False)


def failure_from_activity(err: ActivityError | FailureError, step: WireStep, *,
                          max_attempts: int) -> StepFailure:
    """Turn the failure of a step's activity into a ``StepFailure`` carrying the boundary's record.

    Remote activities fail with an ``ActivityError`` wrapping the cause. A local activity's failure can
    arrive unwrapped (the SDK core resolves it with the application failure itself), so a bare
    ``FailureError`` is its own cause.
    """
    if isinstance(err, ActivityError):
        cause, exhausted = err.cause, err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    else:
        cause, exhausted = err, False
    sent = AttemptFailure.decode(cause.details) if isinstance(cause, ApplicationError) else None
    if sent is not None:
        record = sent.record
        return StepFailure(
            record["code"], record["message"], type=record.get("type", "execution"),
            provider_status=record.get("providerStatus"), detail=record.get("detail"), output=sent.output,
            retryable=bool(record.get("retryable")), attempt=int(record.get("attempt") or 1),
            console=sent.console, record=record, exhausted=exhausted)
    if isinstance(cause, TimeoutError):
        code = "TIMEOUT"
        message = f"step '{step['id']}' timed out ({cause.type.name if cause.type else 'timeout'}"
        message += "; the worker may have died)" if cause.type and cause.type.name == "HEARTBEAT" else ")"
    elif isinstance(cause, CancelledError):
        code, message = "CANCELLED", f"step '{step['id']}' was cancelled"
    elif isinstance(cause, ApplicationError):
        code = "OUTPUT_TOO_LARGE" if cause.type == "PayloadsTooLarge" else (cause.type or "UNKNOWN_ERROR")
        message = cause.message
    else:
        code, message = "UNKNOWN_ERROR", str(cause or err)
    attempt = max_attempts if exhausted else 1
    retryable = classify(code) in ("transient", "rate-limit", "unknown") and code != "CANCELLED"
    return StepFailure(code, message, retryable=retryable, attempt=attempt, exhausted=exhausted)
