"""Sign-in by key for the pages: the session cookie, the signed-in principal, CSRF tokens, small form bodies."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from flowtide.service.auth import Principal, key_principal
from flowtide.service.errors import ApiError
from flowtide.service.http import read_limited
from flowtide.service.web.listview import STATUS_LABELS
from flowtide.service.web.session import COOKIE, SIGNIN_COOKIE, Session, Sessions, SignInLimits
from flowtide.store.database import KEY_PREFIX

FORM_LIMIT = 64 * 1024
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["status_labels"] = STATUS_LABELS  # read by the badge macro


class SignInNeeded(Exception):  # noqa: N818 - control flow: answered with a redirect to the sign-in form
    """No live session: the browser is sent to ``/signin``."""


def sessions(request: Request) -> Sessions:
    """The app's session table (one per app, created on first use)."""
    state = request.app.state
    if not hasattr(state, "sessions"):
        state.sessions = Sessions(state.svc.store)
    return state.sessions  # type: ignore[no-any-return]


def signin_limits(request: Request) -> SignInLimits:
    """The app's sign-in rate limits (one per app, created on first use)."""
    state = request.app.state
    if not hasattr(state, "signin_limits"):
        state.signin_limits = SignInLimits(state.svc.store)
    return state.signin_limits  # type: ignore[no-any-return]


async def signed_in(request: Request, role: str = "read") -> tuple[Principal, Session]:
    """The principal of the browser's session, checked again on every request (a revoked key stops working).

    Raises:
        SignInNeeded: no session, or its key no longer works.
        ApiError: ``FORBIDDEN`` when the key's role is weaker than ``role``; ``RATE_LIMITED``.
    """
    found = await sessions(request).get(request.cookies.get(COOKIE))
    if found is None:  # none, expired, or its key revoked
        raise SignInNeeded
    who = Principal(key_id=found.key_id, key_name=found.key_name, project=found.project, role=found.role)
    await request.app.state.svc.limiter.take(who.key_id)
    if not who.allows(role):
        raise ApiError("FORBIDDEN", f"your key's role '{who.role}' does not allow this (needs '{role}')")
    return who, found


async def form(request: Request, session: Session | None = None) -> dict[str, str]:
    """The fields of a small urlencoded form; with ``session``, its CSRF token must match.

    Raises:
        ApiError: ``PAYLOAD_TOO_LARGE``, ``REQUEST_TIMEOUT`` (a body that trickles or stops), or
            ``FORBIDDEN`` for a missing or wrong CSRF token.
    """
    body = await read_limited(request, FORM_LIMIT, request.app.state.svc.body_timeout)
    fields = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    # as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500)
    if session is not None and not hmac.compare_digest(fields.get("csrf", "").encode(), session.csrf.encode()):
        raise ApiError("FORBIDDEN", "the form is stale or came from another site: reload the page and try again")
    return fields


def _next(target: str | None) -> str:
    """Only a path of this site (never ``//host`` or a URL): no open redirect through the sign-in form."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/runs"


def to_signin(request: Request) -> Response:
    """A redirect to the sign-in form that comes back to this page afterwards."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(path, safe='')}", status_code=303)


async def _signin_form(request: Request, target: str, status_code: int = 200, failed: bool = False) -> Response:
    """The sign-in form with its token, and the cookie holding the nonce the token signs."""
    nonce = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)
    answer = templates.TemplateResponse(request, "signin.html", {
        "next": target, "failed": failed, "csrf": await sessions(request).signin_token(nonce)}, status_code=status_code)
    answer.set_cookie(SIGNIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                      secure=request.url.scheme == "https", path="/signin")
    return answer


async def signin_page(request: Request) -> Response:
    """``GET /signin``: the form asking for a key."""
    return await _signin_form(request, _next(request.query_params.get("next")))


def refused(request: Request, err: ApiError) -> Response:
    """The HTML error page for ``err`` (a form too large or too slow, a stale CSRF token)."""
    return templates.TemplateResponse(request, "error.html", {"code": err.code, "message": err.message},
                                      status_code=err.status, headers=err.headers)


async def signin(request: Request) -> Response:
    """Check the form's token and the rate limits, then the key; on success keep the key in a new
    server-side session and set the session cookie. Refusals are pages: 403 (no or a stale form token),
    429 (too many attempts, or no room for another session), 401 (an unknown key)."""
    try:
        fields = await form(request)
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(fields.get("csrf", "").encode(),
                                                (await sessions(request).signin_token(nonce)).encode()):
            raise ApiError("FORBIDDEN", "the sign-in form is stale or came from another site: reload it and "
                           "try again")
        key, target = fields.get("key", "").strip(), _next(fields.get("next"))
        await signin_limits(request).take(key)
        who: Any = None
        if key.startswith(KEY_PREFIX):
            try:
                who = await key_principal(request.app.state.svc.store, key)
            except ApiError:
                who = None
        if who is None:
            await signin_limits(request).failed(request.client.host if request.client else "?")
            return await _signin_form(request, target, status_code=401, failed=True)
        sid = await sessions(request).create(who.key_id)
    except ApiError as err:
        return refused(request, err)
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(COOKIE, sid, max_age=int(sessions(request).ttl_s), httponly=True, samesite="strict",
                      secure=request.url.scheme == "https", path="/")
    answer.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return answer


async def signout(request: Request) -> Response:
    """``POST /signout`` (with the CSRF token): forget the session on the server and in the browser."""
    found = await sessions(request).get(request.cookies.get(COOKIE))
    if found is not None:
        try:
            await form(request, found)
        except ApiError as err:
            return refused(request, err)
        await sessions(request).drop(found.sid)
    answer = RedirectResponse("/signin", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer
