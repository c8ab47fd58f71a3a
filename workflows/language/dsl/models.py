"""The flow model (pydantic v2) and its canonical "wire" dict (``docs/internals.md``), with the defaults.

These models hold a flow *after* ``workflows.language.dsl`` has normalised both spellings; field names are the
canonical camelCase keys (``continueOnError``, ``runLimit``...). ``to_wire()`` builds exactly the dict the
interpreter reads, as a fresh copy each time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from flowtide.workflows.errors import Problem
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.limits import DEFAULT_LIMITS, UNBOUNDED_STEPS
from flowtide.workflows.retry import RetryMode

OnErrorAction = Literal["stop-workflow", "continue-workflow", "retry-step", "retry-workflow"]
Execution = Literal["remote", "local"]
Number = int | float


def _whole(value: Any) -> Any:
    """``3.0`` -> ``3``: JSON (and JSON Schema) has one number type, so a whole float is a whole number."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


Whole = Annotated[int, BeforeValidator(_whole)]

MAX_RETRIES = 100
DAY_MS = 86_400_000
YEAR_S = 31_536_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, alias_generator=to_camel)


def _as_list(value: Any) -> Any:
    """``"a"`` -> ``["a"]``; ``None`` stays ``None`` (routing targets may be one id or a list)."""
    return [value] if isinstance(value, str) else value


class RetryPolicy(_Model):
    """A step's (or the flow's default) ``retryPolicy``; unset keys fall back to the family defaults."""

    max_retries: Whole | None = Field(None, ge=0, le=MAX_RETRIES)
    delay_ms: Number | None = Field(None, ge=0, le=DAY_MS)
    backoff_multiplier: Number | None = Field(None, ge=1, le=100)
    max_delay_ms: Number | None = Field(None, ge=0, le=7 * DAY_MS)
    mode: RetryMode | None = None
    non_retryable_error_codes: list[str] | None = None

    def to_wire(self) -> dict[str, Any]:
        """Only the keys the flow set."""
        return self.model_dump(by_alias=True, exclude_none=True)


class CircuitBreaker(_Model):
    """``circuitBreaker`` of a step or of ``settings``: shared by every run, keyed by connection or host."""

    failure_threshold: int = Field(5, ge=1, le=10_000)
    window_seconds: Number = Field(60, gt=0, le=86_400)
    open_seconds: Number = Field(30, gt=0, le=86_400)

    def to_wire(self) -> dict[str, Any]:
        return {"failureThreshold": self.failure_threshold, "windowSeconds": float(self.window_seconds),
                "openSeconds": float(self.open_seconds)}


class OnError(_Model):
    """``onError``: what happens after a failure (once the retries are spent)."""

    action: OnErrorAction = "stop-workflow"
    max_retries: Whole | None = Field(None, ge=0, le=MAX_RETRIES)
    next: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"action": self.action, "maxRetries": self.max_retries, "next": self.next}


class Condition(_Model):
    """Graph-style routing: ``{if, then, else}``; targets are step ids or stop-workflow/continue-workflow."""

    if_: Any = Field(alias="if")
    then: list[str] = Field(default_factory=list)
    else_: list[str] = Field(default_factory=list, alias="else")

    _targets = field_validator("then", "else_", mode="before")(lambda v: [] if v is None else _as_list(v))

    def to_wire(self) -> dict[str, Any]:
        return {"if": copy.deepcopy(self.if_), "then": list(self.then), "else": list(self.else_)}


class Limits(_Model):
    """``settings.limits`` (docs/flow-language.md)."""

    output_bytes: Whole = Field(DEFAULT_LIMITS["outputBytes"], ge=1024, le=100_000_000)
    http_response_bytes: Whole = Field(DEFAULT_LIMITS["httpResponseBytes"], ge=1024, le=100_000_000)
    max_step_executions: Whole = Field(DEFAULT_LIMITS["maxStepExecutions"], ge=UNBOUNDED_STEPS, le=10_000_000)
    loop_batch_size: Whole = Field(DEFAULT_LIMITS["loopBatchSize"], ge=1, le=10_000)
    # the main run continues as new past this many history events (or when Temporal suggests it)
    continue_as_new_events: Whole = Field(DEFAULT_LIMITS["continueAsNewEvents"], ge=10, le=40_000)

    @field_validator("max_step_executions")
    @classmethod
    def _no_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("maxStepExecutions 0")
        return value


class Webhook(_Model):
    """``settings.webhook``: how long the service's webhook waits for the run's return step before a 202."""

    timeout_seconds: Number = Field(10, gt=0, le=60)


class Settings(_Model):
    """Flow-wide settings and defaults (``webhook`` is read by the service only, so it is not in the wire form)."""

    timeout: Number | None = Field(None, gt=0, le=YEAR_S)
    retry_policy: RetryPolicy | None = None
    on_error: OnError | None = None
    strict_templates: bool = False
    execution: Execution | None = None  # unset: workflows.placement decides per step
    limits: Limits = Field(default_factory=Limits)
    webhook: Webhook | None = None
    circuit_breaker: CircuitBreaker | None = None

    def to_wire(self) -> dict[str, Any]:
        breaker = {"circuitBreaker": self.circuit_breaker.to_wire()} if self.circuit_breaker else {}
        return {"timeout": None if self.timeout is None else float(self.timeout),
                "retryPolicy": self.retry_policy.to_wire() if self.retry_policy else None,
                "onError": self.on_error.to_wire() if self.on_error else None,
                "strictTemplates": self.strict_templates, "execution": self.execution,
                "limits": self.limits.model_dump(by_alias=True), **breaker}


class Step(_Model):
    """One step, whatever spelling it was written in. ``blocks`` holds nested step lists (if / for-each)."""

    id: str
    kind: str
    title: str
    input: dict[str, Any] = Field(default_factory=dict)
    blocks: dict[str, list[Step]] = Field(default_factory=dict)
    continue_on_error: bool = False
    skip_condition: Any = None
    retry_policy: RetryPolicy | None = None
    timeout: Number | None = Field(None, gt=0, le=YEAR_S)
    run_limit: Whole | None = Field(None, ge=-1, le=10_000_000)
    on_error: OnError | None = None
    next: list[str] | None = None
    condition: Condition | None = None
    execution: Execution | None = None
    # A literal name, never a template: which credential a step uses is decided by the flow, not by data.
    connection: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
    circuit_breaker: CircuitBreaker | None = None

    _next_list = field_validator("next", mode="before")(lambda v: _as_list(v))

    def to_wire(self) -> dict[str, Any]:
        """The canonical step dict (a fresh copy)."""
        absorbed = self.continue_on_error or (self.on_error is not None and self.on_error.action == "continue-workflow")
        return {
            "id": self.id, "kind": self.kind, "title": self.title, "input": copy.deepcopy(self.input),
            "blocks": {name: [s.to_wire() for s in steps] for name, steps in self.blocks.items()},
            "continueOnError": absorbed, "skipCondition": copy.deepcopy(self.skip_condition),
            "retryPolicy": self.retry_policy.to_wire() if self.retry_policy else None,
            "timeout": None if self.timeout is None else float(self.timeout), "runLimit": self.run_limit,
            "onError": self.on_error.to_wire() if self.on_error else None,
            "next": list(self.next) if self.next is not None else None,
            "condition": self.condition.to_wire() if self.condition else None,
            "execution": self.execution,
            # only when set: the activity tasks of flows without connections stay as they were recorded
            **({"connection": self.connection} if self.connection is not None else {}),
            # only when set: the wire form of flows without breakers stays as it was
            **({"circuitBreaker": self.circuit_breaker.to_wire()} if self.circuit_breaker else {}),
        }

    def walk(self) -> list[Step]:
        """This step and every step nested in its blocks, depth first."""
        out = [self]
        for steps in self.blocks.values():
            for s in steps:
                out.extend(s.walk())
        return out


class Flow(_Model):
    """A validated flow. ``warnings`` are the non-fatal findings of validation."""

    id: str
    version: Whole = Field(1, ge=1)
    name: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    settings: Settings = Field(default_factory=Settings)
    steps: list[Step]
    warnings: list[Problem] = Field(default_factory=list, exclude=True)
    source: str = Field("", exclude=True)

    def to_wire(self) -> dict[str, Any]:
        """The canonical flow dict of ``docs/internals.md`` (a fresh, JSON-serialisable copy)."""
        return {"id": self.id, "version": self.version, "name": self.name, "description": self.description,
                "inputSchema": copy.deepcopy(self.input_schema), "settings": self.settings.to_wire(),
                "steps": [s.to_wire() for s in self.steps]}

    def all_steps(self) -> list[Step]:
        """Every step of the flow, nested ones included, in document order."""
        return [x for s in self.steps for x in s.walk()]


def is_graph(block: list[Step]) -> bool:
    """Whether the interpreter runs ``block`` as a graph (some step has ``next`` or ``condition``)."""
    return any(s.next or s.condition for s in block)


def edges(block: list[Step]) -> dict[str, list[str]]:
    """Where each step of ``block`` can go next (within the block)."""
    ids = {s.id for s in block}
    graph = is_graph(block)
    out: dict[str, list[str]] = {}
    for i, s in enumerate(block):
        targets = list(s.next or [])
        if s.condition is not None:
            targets += s.condition.then + s.condition.else_
        if s.on_error is not None and s.on_error.next:
            targets.append(s.on_error.next)
        if not graph and i + 1 < len(block):
            targets.append(block[i + 1].id)
        out.setdefault(s.id, []).extend(t for t in targets if t in ids)
    return out


@dataclass
class StepInfo:
    """Where a built step came from: its JSON path and the key spellings it used."""

    path: str
    written: dict[str, str]

    def key_path(self, canonical: str) -> str:
        return join_path(self.path, self.written.get(canonical, canonical))
