"""``POST /v1/hooks/{projectId}/{flowId}``: start the deployed flow with the body; answer with its return step.

Authenticated by a ``run`` key (Bearer) or by ``X-Flowtide-Signature: t=<unix>,v1=<hex>`` where
``v1 = HMAC-SHA256(flow's webhook secret, "<t>.<raw body>")``, at most ``MAX_SKEW_S`` away from now.
The header is parsed before anything else; a signature is accepted once (``Store.claim_signature``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowtide.client.runs import TERMINAL_FAILURES, run_error
from flowtide.service.auth import Principal, bearer, check_access, key_principal
from flowtide.service.errors import ApiError
from flowtide.service.http import ascii_number, endpoint, flow_id_param, parse_body, path_text, read_body
from flowtide.service.ops import Service, deployed, start, wait_ended
from flowtide.store.database import PROJECT_ID
from flowtide.workflows.language import webhook_header_problem

MAX_SKEW_S = 300
MAX_SIGNATURE_CHARS = 512  # "t=<10 digits>,v1=<64 hex>" is 80; room for a few more schemes, no more
MAX_UNIX_S = 2**33  # year 2242: a timestamp beyond is malformed, not merely stale
_HEX = re.compile(r"[0-9a-f]{64}")
_MALFORMED = "malformed X-Flowtide-Signature: expected t=<unix seconds>,v1=<64 hex digits>"
DEFAULT_TIMEOUT_S = 10.0


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The ``X-Flowtide-Signature`` value for ``body`` (what a sender computes; used by the tests and docs)."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_signature(header: str) -> tuple[int, str]:
    """``(t, v1)`` of a signature header, checked part by part without raising anything but a 401.

    Parts other than ``t`` and ``v1`` are ignored (room for other schemes); a part given twice is refused.

    Raises:
        ApiError: ``UNAUTHENTICATED`` saying what is malformed.
    """
    if len(header) > MAX_SIGNATURE_CHARS:
        raise ApiError("UNAUTHENTICATED", f"{_MALFORMED} (at most {MAX_SIGNATURE_CHARS} characters)")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise ApiError("UNAUTHENTICATED", f"{_MALFORMED} (a part without '=')")
        if key in parts:
            raise ApiError("UNAUTHENTICATED", f"{_MALFORMED} ('{key[:10]}' given twice)")
        parts[key] = value.strip()
    t = ascii_number(parts.get("t", ""), 0, MAX_UNIX_S)
    if t is None:
        raise ApiError("UNAUTHENTICATED", f"{_MALFORMED} (t: whole unix seconds in ASCII digits)")
    v1 = parts.get("v1", "").lower()
    if _HEX.fullmatch(v1) is None:
        raise ApiError("UNAUTHENTICATED", f"{_MALFORMED} (v1: 64 hex digits of HMAC-SHA256)")
    return int(t), v1


def verify(secret: str | None, header: str | tuple[int, str], body: bytes, now: float | None = None) -> None:
    """Check a signature (a header, or ``parse_signature``'s result) against ``body``.

    Raises:
        ApiError: ``UNAUTHENTICATED`` for a malformed, stale or wrong signature (or no secret set).
    """
    t, given = parse_signature(header) if isinstance(header, str) else header
    if abs((time.time() if now is None else now) - t) > MAX_SKEW_S:
        raise ApiError("UNAUTHENTICATED", f"the signature's timestamp is more than {MAX_SKEW_S} s away from now")
    expected = sign(secret or "", body, t).split("v1=", 1)[1]
    # compare even without a secret, so a flow without one takes as long to refuse as a wrong signature
    if not hmac.compare_digest(expected.encode(), given.encode()) or not secret:
        raise ApiError("UNAUTHENTICATED", "the webhook signature does not match")


def signature_digest(signature: tuple[int, str]) -> str:
    """What ``webhook_signatures`` keeps of a signature: a hash (the row alone signs nothing)."""
    return hashlib.sha256(f"{signature[0]}.{signature[1]}".encode()).hexdigest()


async def caller(request: Request, svc: Service, project: str, flow_id: str, raw: bytes,
                 signature: tuple[int, str] | None) -> Principal:
    """Who calls the hook: a ``run`` key of ``project``, or a valid signature of the flow's secret, used once.

    Raises:
        ApiError: ``UNAUTHENTICATED``, ``FORBIDDEN``, ``RATE_LIMITED``, or ``CONFLICT`` for a replayed signature.
    """
    if signature is None:
        who = await key_principal(svc.store, bearer(request))
        await svc.limiter.take(who.key_id)
        check_access(who, project, "run")
        return who
    verify(await svc.db(svc.store.hook_secret, project, flow_id), signature, raw)
    who = Principal(key_id=f"hook:{project}/{flow_id}", key_name="webhook", project=project, role="run")
    await svc.limiter.take(who.key_id)
    expires = datetime.fromtimestamp(signature[0] + MAX_SKEW_S + 1, UTC)  # stale after that: refused anyway
    if not await svc.db(svc.store.claim_signature, who.key_id, signature_digest(signature), expires):
        raise ApiError("CONFLICT", "this signed request was accepted already: a signature is good for one "
                       "delivery (sign each delivery with a new timestamp)", reason="WEBHOOK_REPLAYED")
    return who


def signature_of(request: Request) -> tuple[int, str] | None:
    """The parsed ``X-Flowtide-Signature``, or None when the request authenticates with a key.

    Raises:
        ApiError: ``UNAUTHENTICATED`` for neither, or a malformed signature.
    """
    if request.headers.get("authorization"):
        return None
    header = request.headers.get("x-flowtide-signature")
    if not header:
        raise ApiError("UNAUTHENTICATED", "send Authorization: Bearer <key> or X-Flowtide-Signature")
    return parse_signature(header)


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
    signature = signature_of(request)  # first: a malformed header costs no read, no query, no body
    project = path_text(request, "projectId", PROJECT_ID, "1 to 64 letters, digits, '_', '.' and '-'")
    flow_id = flow_id_param(request)
    raw = await read_body(request, svc.max_body, optional=True)
    who = await caller(request, svc, project, flow_id, raw, signature)
    try:
        payload = parse_body(raw, request)
        rev = await deployed(svc, project, flow_id)
        handle, answer = await start(svc, who, flow_id, payload, request.headers.get("idempotency-key"), rev)
    except Exception:
        if signature is not None:  # nothing started: the sender may deliver this signed request again
            await svc.db(svc.store.release_signature, who.key_id, signature_digest(signature))
        raise
    timeout = webhook_timeout(rev["document"])
    record = await wait_ended(handle, timeout)
    if record is None:
        return JSONResponse({"runId": answer["runId"], "workflowId": answer["workflowId"]}, status_code=202)
    return respond(record)
