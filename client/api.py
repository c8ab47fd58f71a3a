"""The Python API (``import flowtide``): start flows from a program that already holds a Temporal client.

    record = await flowtide.run_flow(client, "flows/order.yaml", {"orderId": 7})
    handle = await flowtide.start_flow(client, flow, payload)      # a FlowHandle
    record = await handle.result()                                  # raises RunFailed for a failed run
    problems = flowtide.validate(flow)                              # [] or [{"path", "message"}]
    worker = flowtide.create_worker(client, task_queue="flowtide")

A flow is a file path, a ``pathlib.Path``, YAML or JSON text, a parsed document in either spelling (a dict, or
a bare list of steps), or a ``Flow``. Everything here goes through ``flowtide.client.runs``, the one path the
CLI and the service use to start and read runs.
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from flowtide.client.flowfiles import load_flow_file
from flowtide.client.runs import (
    TERMINAL_FAILURES,
    check_value,
    inline_sub_flows,
    run_error,
    start_run,
    wait_record,
)
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import Flow, load_flow_text, parse_flow, validate_payload
from flowtide.workflows.search_attributes import DEFAULT_TASK_QUEUE

__all__ = ["FlowHandle", "FlowSource", "RunFailed", "create_worker", "load", "prepare", "run_flow", "start_flow",
           "validate"]

FlowSource = str | os.PathLike[str] | Mapping[str, Any] | Sequence[Any] | Flow
_FILE_SUFFIXES = (".yaml", ".yml", ".json")


class RunFailed(Exception):  # noqa: N818 - reads as what happened: "the run failed"
    """A run ended failed, cancelled, timed out or terminated.

    Attributes:
        record: the run record (``status``, ``error`` with ``code``/``message``/``stepId``, ``steps``, ...).
        status: ``failed``, ``cancelled``, ``timed_out`` or ``terminated``.
        error: the error record that ended the run (the first failed step's), or ``{}`` (cancelled, ...).
        code: its code (``HTTP_SERVER_ERROR``, ``VALIDATION_ERROR``, ...), or None.
    """

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.status = str(record.get("status") or "failed")
        error = run_error(record) or {}
        self.error = error
        self.code: str | None = error.get("code")
        where = f" at step '{error['stepId']}'" if error.get("stepId") else ""
        detail = f": {self.code}: {error.get('message')}" if self.code else ""
        super().__init__(f"run {record.get('workflowId') or record.get('runId')} {self.status}{where}{detail}")


class FlowHandle:
    """A started run. ``id`` is the workflow id (``<flowId>-<16 hex>``), ``run_id`` Temporal's run id."""

    def __init__(self, handle: WorkflowHandle[Any, Any]) -> None:
        self.handle = handle

    @property
    def id(self) -> str:
        return self.handle.id

    @property
    def run_id(self) -> str | None:
        return self.handle.result_run_id or self.handle.run_id

    async def result(self) -> dict[str, Any]:
        """Wait for the run to end and return its run record.

        Raises:
            RunFailed: the run failed, was cancelled, timed out or was terminated (``.record`` has the record).
        """
        record = await wait_record(self.handle)
        if record.get("status") in TERMINAL_FAILURES:
            raise RunFailed(record)
        return record

    async def record(self) -> dict[str, Any]:
        """The run record now (while the run is open: its live state), without waiting for the end."""
        from flowtide.client.inspect import fetch_record
        return await fetch_record(self.handle)

    async def signal(self, name: str, data: Any = None) -> None:
        """Send signal ``name`` with ``data`` (for a ``core.wait-for-signal`` step)."""
        check_value(data, "data")  # FlowValidationError: NaN, Infinity... never enter the run
        await self.handle.signal(name, data)

    async def cancel(self, grace_s: float | None = None) -> str:
        """Ask the run to cancel and wait (up to ``grace_s``, default 10 s) for it to end.

        A run whose workflow tasks keep failing cannot process the request: it is terminated instead
        (reason "cancel requested; workflow task failing"), see ``flowtide.client.cancel``.

        Returns:
            ``cancelled``, ``terminated``, another status it ended with meanwhile, or ``cancel_requested``
            (still cancelling its steps after ``grace_s``).
        """
        from flowtide.client.cancel import CANCEL_GRACE_S, cancel_run
        return await cancel_run(self.handle, grace_s=CANCEL_GRACE_S if grace_s is None else grace_s)


def load(flow: FlowSource, source: str = "") -> Flow:
    """Parse and validate a flow from any of the accepted forms (see the module docstring).

    A ``str`` is a file path when it ends in ``.yaml``/``.yml``/``.json`` and has no line break; any other
    string is YAML or JSON text.

    Raises:
        FlowValidationError: the flow is invalid; ``problems`` lists every finding with its path.
    """
    if isinstance(flow, Flow):
        return flow
    if isinstance(flow, os.PathLike):
        return load_flow_file(os.fspath(flow))
    if isinstance(flow, str):
        if "\n" not in flow and flow.strip().endswith(_FILE_SUFFIXES):
            return load_flow_file(flow.strip())
        return load_flow_text(flow, source)
    return parse_flow(flow, source)


def validate(flow: FlowSource) -> list[dict[str, str]]:
    """Check a flow without starting it.

    Returns:
        ``[]`` when the flow is valid, else every error as ``{"path": ..., "message": ...}`` (warnings are
        not errors: see ``load(flow).warnings``).
    """
    try:
        load(flow)
    except FlowValidationError as err:
        return [{"path": p.path, "message": p.message} for p in err.problems if p.severity == "error"]
    return []


def prepare(flow: FlowSource, payload: Any) -> tuple[Flow, dict[str, Any]]:
    """Validate the flow and the payload; return the flow and its wire form with sub-flow files inlined.

    Raises:
        FlowValidationError: the flow or the payload is invalid.
    """
    parsed = load(flow)
    check_value(payload, "$")  # NaN, Infinity...: refused before anything starts
    problems = validate_payload(parsed, payload)
    if problems:
        raise FlowValidationError(problems, source="input")
    base = Path(parsed.source).parent if parsed.source and Path(parsed.source).is_file() else Path.cwd()
    return parsed, inline_sub_flows(parsed.to_wire(), base)


async def start_flow(client: Client, flow: FlowSource, input: Any = None, *,
                     task_queue: str = DEFAULT_TASK_QUEUE, id: str | None = None) -> FlowHandle:
    """Validate ``flow`` and ``input`` and start a run; return at once.

    Args:
        client: a connected Temporal client (its data converter is used as it is).
        flow: the flow (see ``load``). ``core.sub-flow`` steps that name a ``flowFile`` are read relative to
            the flow's file (or the working directory) and sent inline: workflows never read files.
        input: the trigger payload, checked against the flow's ``input`` schema.
        task_queue: where Flowtide's workers poll (``create_worker`` uses the same default).
        id: the workflow id; default ``<flowId>-<16 hex>``.

    Raises:
        FlowValidationError: the flow or the input is invalid; nothing was started.
    """
    _, wire = prepare(flow, input)
    _collect_at_exit()
    return FlowHandle(await start_run(client, wire, input, task_queue=task_queue, workflow_id=id))


async def run_flow(client: Client, flow: FlowSource, input: Any = None, *,
                   task_queue: str = DEFAULT_TASK_QUEUE, id: str | None = None) -> dict[str, Any]:
    """Start a run and wait for its record (``start_flow`` then ``FlowHandle.result``).

    Raises:
        FlowValidationError: the flow or the input is invalid; nothing was started.
        RunFailed: the run failed, was cancelled or timed out.
    """
    handle = await start_flow(client, flow, input, task_queue=task_queue, id=id)
    return await handle.result()


_COLLECT_AT_EXIT: list[bool] = []


def _collect_at_exit() -> None:
    """Free the SDK's native client and worker objects while the interpreter still runs normally.

    Left to interpreter shutdown, their teardown can race the SDK core's threads and abort the process after
    the program's work is done (SIGSEGV or "PyGILState_Release", sdk-python #300): a program that used the
    Python API and ended cleanly must also exit cleanly. The CLI does the same after each command.
    """
    if not _COLLECT_AT_EXIT:
        _COLLECT_AT_EXIT.append(True)
        atexit.register(gc.collect)


def create_worker(client: Client, task_queue: str = DEFAULT_TASK_QUEUE, **kwargs: Any) -> Worker:
    """A ``temporalio.worker.Worker`` with Flowtide's workflows and every step kind's activity.

    Run it next to your own workers (``async with worker:`` or ``await worker.run()``); it needs its own task
    queue. ``kwargs`` go to ``flowtide.worker.app.build_worker`` and on to ``Worker``.
    """
    from flowtide.worker.app import build_worker
    _collect_at_exit()
    return build_worker(client, task_queue, **kwargs)
