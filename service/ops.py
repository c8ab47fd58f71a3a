"""What the service does for REST, GraphQL and webhooks alike: deploy flows, start, find, read and steer runs.

Every run is started with ``flowtide.client.api.prepare`` + ``flowtide.client.runs.start_run`` and read with
``flowtide.client.inspect`` / ``flowtide.client.listing`` / ``flowtide.client.rerun``: the same code as the CLI.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import structlog
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client.api import load, prepare
from flowtide.client.resolve import follow_chain, listed
from flowtide.client.runs import new_workflow_id, start_run, wait_record
from flowtide.service.auth import Principal, RateLimiter
from flowtide.service.errors import ApiError, problems_of
from flowtide.service.http import DEFAULT_BODY_TIMEOUT_S
from flowtide.store.database import Store
from flowtide.store.replicas import shared_secret
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import FLOW_ID_RE, to_json_data
from flowtide.workflows.search_attributes import PROJECT_ID, QUERY_VALUE

log = structlog.get_logger("flowtide.service")

MAX_WAIT_S = 60.0


@dataclass
class Service:
    """The service's shared parts: database, Temporal client, task queue, limits."""

    store: Store
    client: Client | None
    task_queue: str
    limiter: RateLimiter
    max_body: int
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S  # seconds for a whole request body (FLOWTIDE_API_BODY_TIMEOUT_S)
    temporal_address: str | None = None
    flows: dict[tuple[str, str, int], Any] = field(default_factory=dict)  # parsed revisions (they never change)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # this replica's cancel settling (service.cancels)
    keys: dict[str, bytes] = field(default_factory=dict)  # secrets shared by the replicas, read once (store.replicas)

    async def shared_key(self, name: str) -> bytes:
        """The database's secret ``name``, the same on every replica (made by the first that asks)."""
        if name not in self.keys:
            self.keys[name] = await self.db(shared_secret, self.store, name)
        return self.keys[name]

    def parsed(self, project: str, rev: dict[str, Any]) -> Any:
        """The ``Flow`` of a stored revision, parsed once per process."""
        key = (project, rev["flowId"], int(rev["revision"]))
        if key not in self.flows:
            if len(self.flows) >= 512:
                self.flows.clear()
            self.flows[key] = load(rev["document"])
        return self.flows[key]

    async def temporal(self) -> Client:
        """The Temporal client; connects on first use, so the API starts (and answers 503) without Temporal."""
        if self.client is None:
            from flowtide.client.connect import TemporalUnreachable, connect
            try:
                self.client = await asyncio.wait_for(connect(self.temporal_address), timeout=10)
            except (TemporalUnreachable, TimeoutError) as exc:
                # the operator's log names the address and the cause; a caller learns neither
                log.warning("temporal unreachable", address=self.temporal_address, error=str(exc)[:300])
                raise ApiError("TEMPORAL_UNAVAILABLE", "Temporal cannot be reached; retry later") from None
        return self.client

    async def db(self, fn: Any, *args: Any) -> Any:
        """Run a ``Store`` method in a thread (SQLAlchemy here is synchronous)."""
        return await asyncio.to_thread(fn, *args)


def checked_flow(flow_id: str, document: Any) -> tuple[Any, str | None]:
    """The document to store for ``flow_id`` (its ``id`` filled in) and its title.

    Raises:
        ApiError: ``INPUT_INVALID`` with every problem.
    """
    if isinstance(document, list):
        document = {"id": flow_id, "steps": document}
    if not isinstance(document, dict):
        raise ApiError("INPUT_INVALID", "a flow document is an object with steps, or a list of steps",
                       problems=[{"path": "$", "message": "expected an object or a list"}])
    if document.get("id", flow_id) != flow_id:
        raise ApiError("INPUT_INVALID", f"the document's id '{document.get('id')}' is not '{flow_id}'",
                       problems=[{"path": "id", "message": f"must equal the flow id in the path, '{flow_id}'"}])
    document = {**document, "id": flow_id}
    try:
        flow = load(document)
    except FlowValidationError as err:
        raise ApiError("INPUT_INVALID", "the flow document is invalid", problems=problems_of(err.problems)) from None
    # the service reads no files for anyone: a sub-flow must be inline
    files = [s.id for s in flow.all_steps() if s.kind == "core.sub-flow" and "flowFile" in s.input]
    if files:
        raise ApiError("INPUT_INVALID", "deployed flows cannot name sub-flow files", problems=[
            {"path": f"steps.{sid}.input.flowFile", "message": "put the sub-flow inline as input.flow"}
            for sid in files])
    data, _ = to_json_data(document)  # what is stored is plain JSON, as the flow was read (a YAML date: its text)
    return data, flow.name or flow.description


async def deploy_flow(svc: Service, who: Principal, flow_id: str, document: Any) -> dict[str, Any]:
    """Check ``document`` and store it as the flow's next revision (REST, GraphQL and the page's revert).

    A document identical to the deployed revision's stores nothing: the answer is that revision with
    ``unchanged`` true (the REST API answers it with 200 instead of 201).

    Raises:
        ApiError: ``BAD_REQUEST`` for a bad flow id, ``INPUT_INVALID`` for a document the flow parser refuses.
    """
    if FLOW_ID_RE.fullmatch(flow_id) is None:
        raise ApiError("BAD_REQUEST", f"flow id '{flow_id[:200]}': 1 to 128 letters, digits, '-' and '_', "
                       "the first a letter or digit")
    doc, title = checked_flow(flow_id, document)
    return dict(await svc.db(svc.store.deploy, who.project, flow_id, doc, title, who.key_name))


async def deployed(svc: Service, project: str, flow_id: str, revision: int | None = None) -> dict[str, Any]:
    """A stored revision (default: the deployed one).

    Raises:
        ApiError: ``NOT_FOUND``.
    """
    rev = await svc.db(svc.store.revision, project, flow_id, revision)
    if rev is None:
        what = f"revision {revision} of flow '{flow_id}'" if revision is not None else f"flow '{flow_id}'"
        raise ApiError("NOT_FOUND", f"no {what} in project '{project}'")
    return dict(rev)


def body_hash(*parts: Any) -> str:
    """A stable hash of what an idempotent request asked for (so a reused key with another body is told apart)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


async def start(svc: Service, who: Principal, flow_id: str, payload: Any, idempotency_key: str | None = None,
                rev: dict[str, Any] | None = None) -> tuple[WorkflowHandle[Any, Any], dict[str, Any]]:
    """Validate ``payload`` and start the deployed revision of ``flow_id`` (once per idempotency key).

    ``rev``: that revision, when the caller has read it already (one read: the run starts the very
    revision the caller looked at).

    Returns:
        The run's handle and the start answer ``{"runId", "workflowId", "status", "revision"}``.

    Raises:
        ApiError: ``NOT_FOUND``, ``INPUT_INVALID``, ``CONFLICT`` (key reused with another body).
    """
    rev = rev or await deployed(svc, who.project, flow_id)
    try:
        # the input check is CPU work (bounded by limits.MAX_SCHEMA_OPS): off the event loop every caller shares
        _, wire = await asyncio.to_thread(prepare, svc.parsed(who.project, rev), payload)
    except FlowValidationError as err:
        raise ApiError("INPUT_INVALID", "the input does not match the flow's input schema",
                       problems=problems_of(err.problems)) from None
    wid, options = None, dict[str, Any]()
    if idempotency_key:
        digest = body_hash(flow_id, payload)
        wid, owner = await svc.db(svc.store.claim_idempotency, who.project, idempotency_key[:255], digest,
                                  new_workflow_id(flow_id))
        if owner != digest:
            raise ApiError("CONFLICT", "this Idempotency-Key was used with a different request body")
        # one workflow id per key: Temporal itself keeps concurrent starts to one run
        options = {"id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
                   "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}
    client = await svc.temporal()
    try:
        handle = await start_run(client, wire, payload, task_queue=svc.task_queue, workflow_id=wid,
                                 project_id=who.project, memo={"revision": rev["revision"]}, **options)
    except WorkflowAlreadyStartedError:  # the key's run has ended already: answer with it
        handle = client.get_workflow_handle(str(wid))
    if not idempotency_key:
        return handle, await start_answer(handle, rev["revision"])
    desc = await _owned(handle, who.project)
    return handle, await start_answer(handle, rev["revision"], described=desc)


async def _owned(handle: WorkflowHandle[Any, Any], project: str) -> WorkflowExecutionDescription:
    """The run's description, refusing a run of another project: workflow ids are one namespace for every
    project, and an idempotent start returns whatever run holds its key's id (``new_workflow_id`` makes that a
    2**-64 chance, this makes it harmless).

    Raises:
        ApiError: ``CONFLICT``.
    """
    desc = await handle.describe()
    if desc.typed_search_attributes.get(PROJECT_ID) != project:
        log.error("idempotent start met a run of another project", workflow_id=handle.id)
        raise ApiError("CONFLICT", "this Idempotency-Key's run id is held by a run that is not this project's: "
                       "send the request again with a new Idempotency-Key")
    return desc


async def start_answer(handle: WorkflowHandle[Any, Any], revision: Any,
                       described: WorkflowExecutionDescription | None = None) -> dict[str, Any]:
    """``{"runId", "workflowId", "status", "revision"}`` of a started run (its live status from ``described``,
    the description an idempotent start read already, or from one read here when the run id is unknown)."""
    run_id, status = handle.result_run_id or handle.run_id, "running"
    if described is not None or run_id is None:
        from flowtide.client.inspect import EXECUTION_STATUS
        try:
            desc = described or await handle.describe()
        except Exception as exc:  # the run has started: answer with what is known rather than an error (a retry
            log.warning("start: cannot describe the started run", workflow_id=handle.id, error=str(exc)[:300])
            return {"runId": run_id, "workflowId": handle.id, "status": status, "revision": revision}
        run_id = desc.run_id
        status = EXECUTION_STATUS.get(desc.status, "running") if desc.status else "running"
    return {"runId": run_id, "workflowId": handle.id, "status": status, "revision": revision}


async def wait_ended(handle: WorkflowHandle[Any, Any], seconds: float) -> dict[str, Any] | None:
    """The run record when the run ends within ``seconds`` (Temporal's long poll, no polling here), else None."""
    if seconds <= 0:
        return None
    try:
        return await asyncio.wait_for(wait_record(handle), timeout=min(seconds, MAX_WAIT_S))
    except TimeoutError:
        return None
    except Exception as exc:  # the run has started: the caller gets its id (202), never an error to retry
        log.warning("start: cannot read the started run", workflow_id=handle.id, error=str(exc)[:300])
        return None


async def find_run(svc: Service, project: str, ref: str) -> tuple[WorkflowHandle[Any, Any], Any]:
    """The project's run named by a run id or workflow id, and its description.

    A run that continued as new is one run (as for the CLI, ``client.resolve.follow_chain``): any of its run
    ids, the first one included, names the run that goes on, so signal, cancel and the record reach it.

    Raises:
        ApiError: ``NOT_FOUND`` (also for another project's run: its existence is not disclosed).
    """
    missing = ApiError("NOT_FOUND", f"no run '{ref[:80]}' in project '{project}'")
    if not QUERY_VALUE.match(ref):
        raise missing
    client = await svc.temporal()
    wid, rid = ref, None
    try:
        desc = await client.get_workflow_handle(ref).describe()
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise
        found = await _by_run_id(client, project, ref)
        if found is None:
            raise missing from None
        wid, rid = found
        desc = await client.get_workflow_handle(wid, run_id=rid).describe()
    if desc.typed_search_attributes.get(PROJECT_ID) != project:
        raise missing
    handle = client.get_workflow_handle(wid, run_id=desc.run_id)
    if desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
        handle = await follow_chain(client, wid, desc.run_id)
        desc = await handle.describe()
    return handle, desc


def first_run(svc_client: Client, handle: WorkflowHandle[Any, Any], record: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    """The handle of the first run of ``handle``'s chain (the run id its record names): its history starts
    with the flow and input the run was started with, which a re-run and the run page read."""
    return svc_client.get_workflow_handle(handle.id, run_id=record.get("runId") or handle.run_id)


async def _by_run_id(client: Client, project: str, run_id: str) -> tuple[str, str] | None:
    """``(workflow id, run id)`` of the project's run ``run_id`` from the visibility store.

    Visibility is eventually consistent: a whole run id is looked up again for a few seconds
    (``client.resolve.listed``) before it is declared missing.
    """
    async def probe() -> tuple[str, str] | None:
        async for wf in client.list_workflows(f'ProjectId = "{project}" AND RunId = "{run_id}"', limit=1):
            return wf.id, wf.run_id
        return None
    return await listed(run_id, probe)
