"""Resolve what a user typed (a run id, a unique prefix of one, or a workflow id) to a workflow handle.

Run ids are matched with visibility queries (``RunId STARTS_WITH``), so resolving stays one round trip
however many runs the namespace holds. A workflow id (or a unique prefix of one) names its latest run.
A run that continued as new is one run: any of its run ids resolves to the newest run of the chain.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from flowtide.workflows.search_attributes import MEMO_FIRST_RUN, QUERY_VALUE, WORKFLOW_TYPE

_FULL_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHOWN = 5
VISIBILITY_WAIT = (0.2, 0.4, 0.8, 1.6)  # pauses before asking again for a whole run id not yet listed

T = TypeVar("T")


async def listed(ref: str, probe: Callable[[], Awaitable[T]]) -> T:
    """``probe()`` (a visibility query for ``ref``), asked again over about 3 s while it finds nothing and
    ``ref`` is a whole run id: visibility is eventually consistent, so a run that just started or just closed
    may not be listed yet, and a whole run id is worth a few seconds before "not found" (a prefix is not: it
    may be a typo)."""
    found = await probe()
    if _FULL_RUN_ID.match(ref):
        for pause in VISIBILITY_WAIT:
            if found:
                break
            await asyncio.sleep(pause)
            found = await probe()
    return found


class RunNotFound(Exception):  # noqa: N818 - shown to the user as one line
    """No run, or more than one, matches."""


class NoSuchRun(RunNotFound):
    """No run matches a well-formed reference (the CLI's "not found" exit code, 4)."""


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
        return True
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return False
        raise


async def first_run_of(wf: WorkflowExecution) -> str | None:
    """The first run id of the continue-as-new chain ``wf`` belongs to (kept in its memo), or None."""
    try:
        value = (await wf.memo()).get(MEMO_FIRST_RUN)
    except Exception:  # a memo this client cannot decode (another codec key): the row stands as it is
        return None
    return value if isinstance(value, str) else None


async def _matches(client: Client, query: str) -> list[tuple[str, str]]:
    """(workflow id, run id) of the matching runs; the runs of one continue-as-new chain count once (as
    the chain's first run, the id its run record names)."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    async for wf in client.list_workflows(query, limit=4 * SHOWN):
        first = await first_run_of(wf) or wf.run_id
        found.setdefault((wf.id, first), (wf.id, first))
        if len(found) > SHOWN:
            break
    return list(found.values())


async def follow_chain(client: Client, workflow_id: str, run_id: str | None) -> WorkflowHandle[Any, Any]:
    """A handle for the run that goes on with ``run_id`` (itself, or the newest run of its continue-as-new
    chain): cancel, signal and the run record reach the run that is live, not a closed part of it."""
    if run_id is None:
        return client.get_workflow_handle(workflow_id)
    pinned = client.get_workflow_handle(workflow_id, run_id=run_id)
    desc = await pinned.describe()
    if desc.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
        return pinned
    latest = client.get_workflow_handle(workflow_id)
    first = desc.raw_info.first_run_id or run_id
    if ((await latest.describe()).raw_info.first_run_id or "") == first:
        return latest  # by workflow id, Temporal's handle follows the chain to its newest run
    return pinned


def short_ids(run_ids: list[str], minimum: int = 8) -> int:
    """How many leading characters tell these run ids apart (at least ``minimum``).

    Temporal's run ids are UUIDv7: the first 8 characters are a timestamp that changes only every 65 s,
    so runs started close together need a few more characters to stay distinct.
    """
    n = minimum
    while n < 36 and len({r[:n] for r in run_ids}) < len(set(run_ids)):
        n += 1
    return n


async def resolve_run(client: Client, ref: str) -> WorkflowHandle[Any, Any]:
    """A handle for ``ref``: a workflow id, a run id, or a unique prefix of a run id or workflow id.

    Raises:
        RunNotFound: nothing matches, or a prefix matches several runs (the message lists some).
    """
    ref = ref.strip()
    if not ref:
        raise RunNotFound("empty run reference")
    if not QUERY_VALUE.match(ref):
        raise RunNotFound(f"'{ref[:40]}' is not a run id or workflow id (letters, digits and - _ . : # $ only, "
                          "at most 300)")
    if await _exists(client, ref):
        return client.get_workflow_handle(ref)
    base = f'WorkflowType = "{WORKFLOW_TYPE}"'
    runs = await listed(ref, lambda: _matches(client, f'{base} AND RunId STARTS_WITH "{ref}"'))
    if not runs:
        workflows = await _matches(client, f'{base} AND WorkflowId STARTS_WITH "{ref}"')
        if len({w for w, _ in workflows}) == 1:
            return client.get_workflow_handle(workflows[0][0])
        runs = workflows
    if not runs:
        raise NoSuchRun(f"no run matches '{ref}' (give a run id, a unique prefix of one, or a workflow id)")
    if len(runs) > 1:
        n = short_ids([r for _, r in runs])
        listing = ", ".join(f"{r[:n]} ({w})" for w, r in runs[:SHOWN])
        more = " and more" if len(runs) > SHOWN else ""
        raise RunNotFound(f"'{ref}' matches several runs: {listing}{more}; type more characters")
    wid, rid = runs[0]
    return await follow_chain(client, wid, rid)
