"""``POST /graphql`` (docs/api.md): the same flows and runs as REST, through the same ``ops`` and ``steer``."""

from __future__ import annotations

from typing import Any, cast

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.scalars import JSON
from strawberry.types import Info
from temporalio.client import WorkflowExecutionStatus

from flowtide.client.resolve import follow_chain
from flowtide.service import steer
from flowtide.service.auth import authenticate
from flowtide.service.errors import ApiError, error_entry
from flowtide.service.graphql_guard import cost_of, request_of
from flowtide.service.http import as_api_error, object_body, parse_body, read_body, request_id
from flowtide.service.ops import MAX_WAIT_S, deploy_flow, deployed, find_run, start, wait_ended
from flowtide.workflows.language import json_safe


@strawberry.type
class StepError:
    code: str | None
    message: str | None
    provider_status: int | None
    retryable: bool | None
    detail: JSON | None


@strawberry.type
class Step:
    step_id: str
    step_type: str | None
    title: str | None
    status: str
    attempts: int | None
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    input: JSON | None
    output: JSON | None
    error: StepError | None


@strawberry.type
class RunErrorEntry:
    step_id: str | None
    code: str | None
    message: str | None
    severity: str | None


@strawberry.type
class Progress:
    done: int
    total: int


@strawberry.type
class Run:
    run_id: str | None
    workflow_id: str | None
    flow_id: str | None
    status: str | None
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    progress: Progress | None
    error: StepError | None
    errors: list[RunErrorEntry]
    steps: list[Step]
    output: JSON | None
    record: JSON


@strawberry.type
class RunSummary:
    run_id: str
    workflow_id: str
    flow_id: str | None
    revision: int | None
    status: str
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    failed_step_id: str | None = None
    error_code: str | None = None


@strawberry.type
class RunPage:
    runs: list[RunSummary]
    next_cursor: str | None


@strawberry.type
class Flow:
    flow_id: str
    revision: int
    deployed_at: str
    title: str | None
    document: JSON | None = None


@strawberry.type
class Deployed:
    flow_id: str
    revision: int
    deployed_at: str
    unchanged: bool


@strawberry.type
class Started:
    run_id: str | None
    workflow_id: str
    status: str | None
    revision: int | None
    run: Run | None = None


def _error(e: Any) -> StepError | None:
    if not isinstance(e, dict):
        return None
    status = e.get("providerStatus")
    return StepError(code=e.get("code"), message=e.get("message"), retryable=e.get("retryable"), detail=e.get("detail"),
                     provider_status=status if isinstance(status, int) and not isinstance(status, bool) else None)


def run_of(rec: dict[str, Any]) -> Run:
    """A ``Run`` from a run record."""
    steps = [Step(step_id=s.get("stepId", ""), step_type=s.get("stepType"), title=s.get("title"),
                  status=s.get("status", ""), attempts=s.get("attempts"), started_at=s.get("startedAt"),
                  completed_at=s.get("completedAt"), duration_ms=s.get("durationMs"), input=s.get("input"),
                  output=s.get("output"), error=_error(s.get("error"))) for s in rec.get("steps") or []]
    errors = [RunErrorEntry(step_id=e.get("stepId"), code=e.get("code"), message=e.get("message"),
                            severity=e.get("severity")) for e in rec.get("errors") or []]
    prog = rec.get("progress") if isinstance(rec.get("progress"), dict) else None
    return Run(run_id=rec.get("runId"), workflow_id=rec.get("workflowId"), flow_id=rec.get("flowId"),
               status=rec.get("status"), started_at=rec.get("startedAt"), completed_at=rec.get("completedAt"),
               duration_ms=rec.get("durationMs"), error=_error(rec.get("error")), errors=errors, steps=steps,
               progress=Progress(done=int(prog.get("done", 0)), total=int(prog.get("total", 0))) if prog else None,
               output=rec.get("output"), record=cast(JSON, rec))


def _ctx(info: Info, role: str = "read") -> tuple[Any, Any]:
    who = info.context["who"]
    if not who.allows(role):
        raise ApiError("FORBIDDEN", f"this key's role '{who.role}' does not allow this call (needs '{role}')")
    return info.context["svc"], who


@strawberry.type
class Query:
    @strawberry.field
    async def flows(self, info: Info) -> list[Flow]:
        svc, who = _ctx(info)
        return [Flow(flow_id=f["flowId"], revision=f["revision"], deployed_at=f["deployedAt"], title=f["title"])
                for f in await svc.db(svc.store.flows, who.project)]

    @strawberry.field
    async def flow(self, info: Info, id: str) -> Flow | None:
        svc, who = _ctx(info)
        f = await deployed(svc, who.project, id)
        return Flow(flow_id=id, revision=f["revision"], deployed_at=f["deployedAt"], title=f["title"],
                    document=f["document"])

    @strawberry.field
    async def runs(self, info: Info, status: str | None = None, flow_id: str | None = None, first: int = 20,
                   after: str | None = None) -> RunPage | None:
        svc, who = _ctx(info)
        if not 1 <= first <= 100:
            raise ApiError("BAD_REQUEST", "first: between 1 and 100")
        page = await steer.runs_page(svc, who.project, status=status, flow=flow_id, limit=first, cursor=after)
        return RunPage(runs=[RunSummary(**{_snake(k): v for k, v in r.items()}) for r in page["runs"]],
                       next_cursor=page["nextCursor"])

    @strawberry.field
    async def run(self, info: Info, id: str) -> Run | None:
        svc, who = _ctx(info)
        return run_of(await steer.record(svc, who.project, id))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


async def _live(svc: Any, project: str, ref: str) -> str:
    """The run that goes on with ``ref``: a run that continued as new is reached by its first run id (the id
    its record and the runs list show), through the CLI's ``follow_chain``."""
    handle, desc = await find_run(svc, project, ref)
    if desc.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
        return ref
    live = await follow_chain(await svc.temporal(), handle.id, desc.run_id)
    return str((await live.describe()).run_id)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def deploy_flow(self, info: Info, flow_id: str, document: JSON) -> Deployed:
        svc, who = _ctx(info, "admin")
        out = await deploy_flow(svc, who, flow_id, document)
        return Deployed(**{_snake(k): v for k, v in out.items()})

    @strawberry.mutation
    async def start_run(self, info: Info, flow_id: str, input: JSON | None = None, wait: float = 0) -> Started:
        svc, who = _ctx(info, "run")
        handle, answer = await start(svc, who, flow_id, input)
        rec = await wait_ended(handle, max(0.0, min(float(wait), MAX_WAIT_S)))
        return Started(**{_snake(k): v for k, v in answer.items()}, run=run_of(rec) if rec else None)

    @strawberry.mutation
    async def rerun(self, info: Info, run_id: str, from_failed: bool = False) -> Started:
        svc, who = _ctx(info, "run")
        answer = await steer.rerun(svc, who, run_id, {"fromFailed": from_failed})
        return Started(**{_snake(k): v for k, v in answer.items()})

    @strawberry.mutation
    async def cancel_run(self, info: Info, run_id: str) -> Started:
        svc, who = _ctx(info, "run")
        answer = await steer.cancel(svc, who.project, await _live(svc, who.project, run_id))
        return Started(run_id=answer["runId"], workflow_id=answer["workflowId"], status="cancel_requested",
                       revision=None)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are answered and logged by ``handle`` (once, with the request id), not by strawberry."""


SCHEMA = _Schema(query=Query, mutation=Mutation)


def _misfit(err: GraphQLError) -> bool:
    """The query or its variables do not fit the schema (no resolver ran: graphql-core's own error)."""
    return err.original_error is None or isinstance(err.original_error, GraphQLError)


def _entry(err: GraphQLError, rid: str) -> dict[str, Any]:
    if _misfit(err):
        return error_entry("BAD_REQUEST", err.message, rid)
    api = as_api_error(cast(Exception, err.original_error), rid)
    entry = error_entry(api.code, api.message, rid, **api.extensions)
    if err.path:
        entry["path"] = list(err.path)
    return entry


async def handle(request: Request, svc: Any) -> Response:
    """Authenticate (401/400/403 as HTTP answers), check the request's shape and limits, spend one token of the
    key's rate limit per top-level field (all or none, before anything runs), run the operation, answer
    ``data`` and seed-002 ``errors``."""
    rid = request_id(request)
    who = await authenticate(request, svc.store, svc.limiter, "read")
    req = request_of(object_body(parse_body(await read_body(request, svc.max_body), request)))
    cost = cost_of(req)
    if cost > svc.limiter.burst:
        raise ApiError("INPUT_INVALID", f"this request makes {cost} calls; a key may make at most "
                       f"{svc.limiter.burst:g} at once: split it")
    if cost > 1:  # the request's own token (taken by authenticate) pays for its first call
        await svc.limiter.take(who.key_id, cost - 1)
    result = await SCHEMA.execute(req.query, variable_values=req.variables, operation_name=req.operation_name,
                                  context_value={"svc": svc, "who": who})
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [_entry(e, rid) for e in result.errors]
        if result.data is None and all(_misfit(e) for e in result.errors):
            return JSONResponse({"errors": out["errors"]}, status_code=400)
    return JSONResponse(json_safe(out))  # runs recorded with NaN/Infinity still answer valid JSON
