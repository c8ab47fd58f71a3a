"""``POST /v1/hooks/{projectId}/{flowId}``: start the deployed flow with the body; answer with its return step.

Authenticated by a ``run`` key (Bearer) or by ``X-Flowtide-Signature: t=<unix>,v1=<hex>`` where
``v1 = HMAC-SHA256(flow's webhook secret, "<t>.<raw body>")``, at most ``MAX_SKEW_S`` away from now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowtide.client.runs import TERMINAL_FAILURES, run_error
from flowtide.client.service._http import endpoint, parse_body, read_body
from flowtide.client.service.auth import Principal, bearer, check_access, key_principal
from flowtide.client.service.errors import ApiError
from flowtide.client.service.ops import Service, deployed, start, wait_ended
from flowtide.workflows.language import webhook_header_problem

MAX_SKEW_S = 300
DEFAULT_TIMEOUT_S = 10.0
def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The ``X-Flowtide-Signature`` value for ``body`` (what a sender computes; used by the tests and docs)."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str | None, header: str, body: bytes, now: float | None = None) -> None:
    """Check a signature header against ``body``.

    Raises:
        ApiError: ``UNAUTHENTICATED`` for a malformed, stale or wrong signature (or no secret set).
    """
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    t, given = parts.get("t", ""), parts.get("v1", "")
    if not t.isdigit() or not given:
        raise ApiError("UNAUTHENTICATED", "malformed X-Flowtide-Signature: expected t=<unix seconds>,v1=<hex>")
    if abs((time.time() if now is None else now) - int(t)) > MAX_SKEW_S:
        raise ApiError("UNAUTHENTICATED", f"the signature's timestamp is more than {MAX_SKEW_S} s away from now")
    expected = sign(secret or "", body, int(t)).split("v1=", 1)[1]
    # compare even without a secret, so a flow without one takes as long to refuse as a wrong signature
    if not hmac.compare_digest(expected.encode(), given.encode()) or not secret:
        raise ApiError("UNAUTHENTICATED", "the webhook signature does not match")


async def caller(request: Request, svc: Service, project: str, flow_id: str, raw: bytes) -> Principal:
    """Who calls the hook: a ``run`` key of ``project``, or a valid signature of the flow's secret."""
    if request.headers.get("authorization"):
        who = await key_principal(svc.store, bearer(request))
        svc.limiter.take(who.key_id)
        check_access(who, project, "run")
        return who
    header = request.headers.get("x-flowtide-signature")
    if not header:
        raise ApiError("UNAUTHENTICATED", "send Authorization: Bearer <key> or X-Flowtide-Signature")
    verify(await svc.db(svc.store.hook_secret, project, flow_id), header, raw)
    who = Principal(key_id=f"hook:{project}/{flow_id}", key_name="webhook", project=project, role="run")
    svc.limiter.take(who.key_id)
    return who


def webhook_timeout(document: Any) -> float:
    settings = (document or {}).get("settings") or {} if isinstance(document, dict) else {}
    value = (settings.get("webhook") or {}).get("timeoutSeconds", DEFAULT_TIMEOUT_S)
    return float(value) if isinstance(value, int | float) else DEFAULT_TIMEOUT_S


def respond(record: dict[str, Any]) -> Response:
    """The HTTP answer of an ended run: its ``webhookResponse``, else 200 and the return's ``output``."""
    if record.get("status") in TERMINAL_FAILURES:
        err = run_error(record) or {}
        # 502: the hook worked, the flow behind it did not; the code is the run's own error code
        message = str(err.get("message") or f"the run {record.get('status')}")
        raise ApiError(str(err.get("code") or "RUN_FAILED"), message, status=502, runId=record.get("runId"),
                       workflowId=record.get("workflowId"))
    spec = record.get("webhookResponse")
    if not isinstance(spec, dict):
        return JSONResponse(record.get("output"), status_code=200)
    status = spec.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599 else 200
    # The rule `validate` applies, again for the values templates produced: an offending header is dropped.
    headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()
               if isinstance(spec.get("headers"), dict) and webhook_header_problem(k, v) is None}
    body = spec.get("body")
    if isinstance(body, str):
        media = next((v for k, v in headers.items() if k.lower() == "content-type"), "text/plain; charset=utf-8")
        return Response(body, status_code=status, headers=headers, media_type=media)
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")


@endpoint
async def webhook(request: Request) -> Response:
    svc = request.app.state.svc
    project, flow_id = request.path_params["projectId"], request.path_params["flowId"]
    raw = await read_body(request, svc.max_body, optional=True)
    who = await caller(request, svc, project, flow_id, raw)
    payload = parse_body(raw, request)
    rev = await deployed(svc, project, flow_id)
    handle, answer = await start(svc, who, flow_id, payload, request.headers.get("idempotency-key"), rev)
    timeout = webhook_timeout(rev["document"])
    record = await wait_ended(handle, timeout)
    if record is None:
        return JSONResponse({"runId": answer["runId"], "workflowId": answer["workflowId"]}, status_code=202)
    return respond(record)
