"""The typed contracts between the flow language, the engine, the activities and the client.

Everything here travels as JSON: in workflow arguments and results, activity tasks and results, failure
details and queries, and so in every recorded history. The contracts are ``TypedDict``s, not classes: at
run time they are the plain dicts that were always sent, so payloads stay byte for byte what recorded
histories hold (the replay corpus proves it), while mypy checks every key that is read or written.

The positional layouts of ``ApplicationError.details`` are written by ``encode`` and read by ``decode`` of
``AttemptFailure`` (a failed step attempt) and ``RunFailure`` (a failed run), and nowhere else.

    flow document --parse_flow--> Flow (pydantic) --to_wire--> WireStep (the engine's step)
      --activity_task--> ActivityTask --activity--> ActivityResult
                                          or ApplicationError(AttemptFailure) --decode--> StepFailure
      --finish--> StepRow and ErrorRecord --> RunRecord (query, result, RunFailure)
"""

# No ``from __future__ import annotations`` here: on Python 3.11 a TypedDict reads ``NotRequired`` only from
# evaluated annotations (``__required_keys__`` would be wrong, and the contract tests read it).
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, cast

from flowtide.workflows.errors import ErrorRecord as ErrorRecord  # declared beside the taxonomy it carries
from flowtide.workflows.errors import ErrorType, Severity, StepFailure, classify

# Signal names starting with this are Flowtide's own (the engine's ``__flowtide.childStatus``) or Temporal's
# (``__temporal_...``): the service never sends one for a caller.
RESERVED_SIGNAL_PREFIX = "__"

StepStatus = Literal["running", "completed", "failed", "skipped", "warning", "cancelled", "retrying"]


class WireStep(TypedDict):
    """A step as the engine sees it: ``Step.to_wire()`` of the flow language, after validation."""

    id: str
    kind: str
    title: str
    input: dict[str, Any]
    blocks: dict[str, list["WireStep"]]  # nested step lists: then / else of core.if, steps of core.for-each
    continueOnError: bool
    skipCondition: Any
    retryPolicy: dict[str, Any] | None
    timeout: float | None
    runLimit: int | None
    onError: dict[str, Any] | None
    next: list[str] | None
    condition: dict[str, Any] | None
    execution: Literal["local", "remote"] | None
    connection: NotRequired[str]  # absent unless set: older tasks keep their recorded shape
    circuitBreaker: NotRequired[dict[str, Any]]


class ActivityTask(TypedDict):
    """What the engine hands a step's activity (the activity's one argument)."""

    stepId: str
    stepType: str
    title: str
    input: dict[str, Any]  # rendered; secret references stay markers until the activity resolves them
    timeout: float
    retry: dict[str, Any]  # RetrySettings.to_dict(): the activity applies the preset's rules to its failures
    runId: str
    workflowId: str
    iteration: int | None
    limits: dict[str, Any]
    secretNonce: NotRequired[str]
    connection: NotRequired[str]  # a name only: the activity reads the credential, never the history
    project: NotRequired[str]  # the run's project: with a connection, or a circuit breaker (its scope)
    circuitBreaker: NotRequired[dict[str, Any]]




class ActivityResult(TypedDict):
    """What a step's activity returns on success."""

    output: Any
    warnings: list[ErrorRecord]
    console: list[str]
    attempt: int
    throttled: NotRequired[int]  # Retry-After answers seen: an adaptive loop slows down on them


class StepRow(TypedDict):
    """One row of a run record's ``steps``: one execution of one step."""

    stepId: str
    stepType: str
    title: str
    iteration: int | None
    status: StepStatus
    attempts: int
    startedAt: str
    completedAt: str | None
    durationMs: int | None
    input: Any
    output: Any
    console: list[str]
    error: ErrorRecord | None
    warnings: list[ErrorRecord]
    path: NotRequired[str]  # "#3" or "#3.1": the loop iteration a row belongs to
    retried: NotRequired[bool]  # superseded by a later run of the step (onError retries)
    reused: NotRequired[bool]  # taken from the run being re-run, not executed again
    retry: NotRequired[dict[str, Any]]  # added by the client for a step Temporal is retrying


class RunRecord(TypedDict):
    """The run record (docs/runs.md): the ``record`` query, the run's result, a failed run's details."""

    runId: str
    workflowId: str
    flowId: str | None
    flowVersion: int
    status: str
    startedAt: str
    completedAt: str | None
    durationMs: int
    progress: dict[str, int]
    counts: dict[str, int]
    firstFailedStep: str | None
    error: ErrorRecord | None
    errors: list[ErrorRecord]
    output: Any
    webhookResponse: Any
    steps: list[StepRow]
    loops: list[dict[str, Any]]
    attempt: int
    rerunOf: str | None
    chain: NotRequired[dict[str, Any]]
    stepsSummarised: NotRequired[dict[str, Any]]
    stepsTruncated: NotRequired[int]  # the record outgrew one payload: this many older rows were left out


def error_record(
    *,
    step_id: str | None,
    step_type: str | None,
    code: str,
    message: str,
    type: ErrorType = "execution",
    severity: Severity = "error",
    retryable: bool = False,
    provider_status: int | None = None,
    detail: str | None = None,
    attempt: int = 1,
    iteration: int | None = None,
) -> ErrorRecord:
    """Build the one error record shape of docs/error-handling.md (keys in a stable order)."""
    rec: ErrorRecord = {
        "stepId": step_id,
        "stepType": step_type,
        "type": type,
        "code": code,
        "message": message,
        "severity": severity,
        "retryable": retryable,
        "isRetryable": retryable,
        "providerStatus": provider_status,
        "detail": detail,
        "attempt": attempt,
        "class": classify(code),
    }
    if iteration is not None:
        rec["iteration"] = iteration
    return rec


def failure_to_record(
    f: StepFailure, *, step_id: str | None, step_type: str | None, retryable: bool, attempt: int,
    iteration: int | None = None,
) -> ErrorRecord:
    """The error record of a ``StepFailure``."""
    return error_record(
        step_id=step_id, step_type=step_type, code=f.code, message=f.message, type=f.type,
        severity=f.severity, retryable=retryable, provider_status=f.provider_status, detail=f.detail,
        attempt=attempt, iteration=iteration,
    )


def activity_task(kind: str, inp: dict[str, Any], *, step_id: str, title: str | None = None, timeout: float,
                  retry: dict[str, Any], run_id: str, workflow_id: str, iteration: int | None = None,
                  limits: dict[str, Any] | None = None, secret_nonce: str | None = None,
                  connection: str | None = None, breaker: dict[str, Any] | None = None,
                  project: str | None = None, breaker_project: bool = False,
                  files_project: bool = False) -> ActivityTask:
    """What the interpreter hands a step's activity (read by ``activities._boundary``).

    ``retry`` is the step's effective retry settings (``RetrySettings.to_dict()``): the activity applies
    the preset's rules (which codes are retryable, Retry-After) to its own failures. ``secret_nonce`` is
    the run's marker for secret references (see ``workflows.language.templates``). ``connection`` is only a name:
    the activity reads the credential itself, so that it never enters the workflow history. ``project`` is
    handed on with a connection, with a breaker when ``breaker_project`` (its breaker is the project's), to a kind
    that opens files when ``files_project`` (its folder of the roots), and with the secret nonce (which worker
    secrets it may resolve).
    """
    task: ActivityTask = {"stepId": step_id, "stepType": kind, "title": title or step_id, "input": inp,
                          "timeout": timeout, "retry": retry, "runId": run_id, "workflowId": workflow_id,
                          "iteration": iteration, "limits": limits or {}}
    if secret_nonce is not None:
        task["secretNonce"] = secret_nonce
    if connection is not None:  # absent otherwise: tasks of recorded histories keep their exact shape
        task["connection"] = connection
    # the run's project: only its own and the database-wide connections, its folder of the file roots, and the
    # worker secrets shared with projects may be used (every task of a project's run names it)
    if project and (connection is not None or files_project or secret_nonce is not None):
        task["project"] = project
    if breaker:  # the step's (or settings') circuitBreaker, applied by store.breakers
        task["circuitBreaker"] = breaker
        if project and breaker_project:
            task["project"] = project
    return task


# ``ApplicationError.type`` of a local attempt the activity boundary refused because its worker is stopping:
# not a step failure (no error record, no attempt counted); the engine ends the workflow task and starts the
# step again, on whichever worker runs the run next. Recorded in the attempt's marker, so a replay decides alike.
WORKER_STOPPING = "WORKER_STOPPING"


def handed_back(err: BaseException) -> bool:
    """Whether ``err`` (a local activity's failure, wrapped in ``ActivityError`` or not) is that refusal. Read by
    attribute, so that this module keeps importing nothing of Temporal: ``ApplicationError.type`` on the error
    or on its ``cause``."""
    return any(getattr(e, "type", None) == WORKER_STOPPING for e in (err, getattr(err, "cause", None)))


@dataclass(frozen=True)
class AttemptFailure:
    """``ApplicationError.details`` of a failed step attempt, raised by the activity boundary:
    ``(error record, output, console)``."""

    record: ErrorRecord
    output: Any = None
    console: list[str] = field(default_factory=list)

    def encode(self) -> tuple[ErrorRecord, Any, list[str]]:
        return self.record, self.output, self.console

    @staticmethod
    def decode(details: Sequence[Any] | None) -> "AttemptFailure | None":
        """None for details of another shape (an ``ApplicationError`` that did not come from the boundary)."""
        if not details or not isinstance(details[0], dict):
            return None
        console = details[2] if len(details) > 2 and isinstance(details[2], list) else []
        return AttemptFailure(_record(details[0]), details[1] if len(details) > 1 else None, console)


@dataclass(frozen=True)
class RunFailure:
    """``ApplicationError.details`` of a failed run, raised by the engine: ``(error record, run record)``."""

    record: ErrorRecord
    run: RunRecord | None = None

    def encode(self) -> tuple[ErrorRecord, RunRecord | None]:
        return self.record, self.run

    @staticmethod
    def decode(details: Sequence[Any] | None) -> "RunFailure | None":
        """None for details of another shape; ``run`` is None when the details carry no run record."""
        if not details or not isinstance(details[0], dict):
            return None
        run: Any = dict(details[1]) if len(details) > 1 and isinstance(details[1], dict) else None
        return RunFailure(_record(details[0]), run)


def _record(value: dict[str, Any]) -> ErrorRecord:
    """An error record read back from a payload (a copy: callers may change it)."""
    rec: Any = dict(value)
    return cast(ErrorRecord, rec)
