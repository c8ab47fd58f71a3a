"""What a step implementation sees and returns: its context, its result, and the types of implementations
and error mappers (``activities._boundary`` runs them; every family module implements them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flowtide.workflows.errors import StepFailure
from flowtide.workflows.limits import DEFAULT_LIMITS
from flowtide.workflows.retry import RetrySettings

DEFAULT_OUTPUT_LIMIT = DEFAULT_LIMITS["outputBytes"]


@dataclass
class StepResult:
    """What a step implementation returns on success (warnings do not fail the step)."""

    output: Any
    warnings: list[StepFailure] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@dataclass
class StepContext:
    """What a step implementation may know about the call it serves."""

    step_id: str
    step_type: str
    title: str
    run_id: str
    workflow_id: str
    iteration: int | None
    attempt: int
    timeout_s: float
    retry: RetrySettings
    limits: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)
    method: str | None = None  # set by HTTP steps for the POST/PATCH retry rule
    project: str | None = None  # the run's project: its folder of the file roots, the worker secrets it may use

    def idempotency_key(self) -> str:
        """Stable across retries of one call: run id + step id + iteration."""
        suffix = f"#{self.iteration}" if self.iteration is not None else ""
        return f"{self.run_id}:{self.step_id}{suffix}"

    def log(self, line: str) -> None:
        self.console.append(line)


StepImpl = Callable[[dict[str, Any], StepContext], Awaitable[StepResult]]
Mapper = Callable[[BaseException], StepFailure | None]
