"""Builds the Flowtide Temporal worker: the one flow interpreter plus one activity per outside-world kind."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from flowtide.activities import StopGrace, all_activities
from flowtide.guards.network import close_pools
from flowtide.worker.local import register
from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow, RunMetrics
from flowtide.workflows.search_attributes import DEFAULT_TASK_QUEUE

# Pure, deterministic modules the sandbox may share between runs instead of re-importing them per run.
PASSTHROUGH = ("flowtide", "re2", "jsonschema", "referencing", "rpds", "jsonschema_specifications", "attrs",
               "opentelemetry")  # the tracing interceptor's context, shared with the worker (docs/tracing.md)
# What bounds a worker's memory however many runs wait: the sticky cache keeps at most this many runs in
# memory (the least recently used one is evicted and replayed from its history when it next has work), and
# at most this many workflow tasks run at once. Measured in docs/performance.md ("Waiting runs").
MAX_CACHED_WORKFLOWS = 1000
MAX_WORKFLOW_TASKS = 100


class WorkerConfigError(ValueError):
    """A worker setting from the environment that is not a number in its range (the CLI's exit code 2)."""


def _env_number(name: str, default: float, low: float, kind: type = int) -> Any:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not low <= number < float("inf"):
        what = "a whole number" if kind is int else "a number"
        raise WorkerConfigError(f"{name} must be {what} of at least {low:g}, not '{value[:40]}'")
    return number


def task_queue_from_env() -> str:
    return os.environ.get("FLOWTIDE_TASK_QUEUE", DEFAULT_TASK_QUEUE)


def build_worker(client: Client, task_queue: str | None = None, *, graceful_shutdown_s: float | None = None,
                 max_concurrent_activities: int | None = None, sandbox: bool | None = None,
                 **overrides: Any) -> Worker:
    """The worker for every step kind on ``task_queue`` (tests, the CLI and ``flowtide worker`` share it).

    Args:
        client: a connected Temporal client (see ``client.connect``).
        task_queue: defaults to ``FLOWTIDE_TASK_QUEUE`` or ``flowtide``.
        graceful_shutdown_s: how long in-flight activities may finish on shutdown
            (``FLOWTIDE_GRACEFUL_SHUTDOWN_S``, default 30).
        max_concurrent_activities: activity slots (``FLOWTIDE_MAX_ACTIVITIES``, default 100).
        ``FLOWTIDE_MAX_CACHED_WORKFLOWS`` (default ``MAX_CACHED_WORKFLOWS``): runs kept in the sticky cache;
        ``FLOWTIDE_MAX_WORKFLOW_TASKS`` (default ``MAX_WORKFLOW_TASKS``): workflow tasks at once. Together
        they bound the worker's memory, whatever the number of waiting runs.
        ``FLOWTIDE_STICKY_TIMEOUT_S`` (default 10, the SDK's): how long a run's next workflow task waits for
        this worker (which caches the run) before any worker may take it; after a crash, the runs this
        worker had cached resume elsewhere after at most this long.
        sandbox: run Flowtide's workflows in Temporal's workflow sandbox (``FLOWTIDE_WORKFLOW_SANDBOX=1``;
            default off). They are declared ``sandboxed=False``: their determinism is proven by the replay
            corpus, and the sandbox's per-activation import patching cost ~18 % of the worker's CPU per step
            (docs/performance.md). The test suite's workers turn it on, so a restricted call (a clock, I/O)
            in workflow code still fails a test.
        **overrides: passed to ``temporalio.worker.Worker``.
    """
    grace = graceful_shutdown_s if graceful_shutdown_s is not None else _env_number(
        "FLOWTIDE_GRACEFUL_SHUTDOWN_S", 30.0, 0, float)
    slots = max_concurrent_activities or _env_number("FLOWTIDE_MAX_ACTIVITIES", 100, 1)
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    if sandbox is None:
        sandbox = os.environ.get("FLOWTIDE_WORKFLOW_SANDBOX", "") in ("1", "true", "yes")
    kwargs: dict[str, Any] = {
        "task_queue": task_queue or task_queue_from_env(),
        "workflows": [FlowWorkflow, FlowLoopWorkflow],  # FlowLoop: the child runs of big loops
        "activities": all_activities(),
        "workflow_runner": runner,  # for workflows declared sandboxed (the benchmark's hand-written ones)
        # Flowtide's own workflows are declared sandboxed=False: they take this runner
        "unsandboxed_workflow_runner": runner if sandbox else UnsandboxedWorkflowRunner(),
        "graceful_shutdown_timeout": timedelta(seconds=grace),
        "max_concurrent_activities": slots,
        "max_cached_workflows": _env_number("FLOWTIDE_MAX_CACHED_WORKFLOWS", MAX_CACHED_WORKFLOWS, 0),
        "max_concurrent_workflow_tasks": _env_number("FLOWTIDE_MAX_WORKFLOW_TASKS", MAX_WORKFLOW_TASKS, 2),
        # flowtide_runs_total{flow, status} (workflows.engine.metrics); the grace of local steps in flight
        "interceptors": [RunMetrics(), StopGrace(grace)],
    }
    sticky = os.environ.get("FLOWTIDE_STICKY_TIMEOUT_S")
    if sticky:
        kwargs["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=float(sticky))
    extra = list(overrides.pop("interceptors", []))
    kwargs.update(overrides)
    kwargs["interceptors"] += extra
    return register(Worker(client, **kwargs))  # starts of its task queue from this process go eager


@asynccontextmanager
async def running(client: Client, task_queue: str | None = None, **kwargs: Any) -> AsyncIterator[Worker]:
    """Run a worker for the duration of the block; on exit it shuts down gracefully (in-flight steps get
    ``graceful_shutdown_s``), then the HTTP steps' kept-alive connections are closed."""
    async with build_worker(client, task_queue, **kwargs) as worker:
        yield worker
    await close_pools()
