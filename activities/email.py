"""The ``email.send`` step: one message over SMTP with aiosmtplib.

Input (``{{ secrets.NAME }}`` is resolved by the boundary before the step sees it)::

    {"host", "port"?, "username"?, "password"?, "tls"?: bool, "starttls"?: bool | None,
     "validateCerts"?: bool, "from", "to": str | [str], "cc"?, "bcc"?, "replyTo"?,
     "subject", "text"?, "html"?, "headers"?: {name: value}, "timeout"?: seconds}

Output: ``{"accepted": [addr], "rejected": {addr: "550 reason"}, "messageId", "response"}``.

Some recipients refused -> success with an ``SMTP_PARTIAL_DELIVERY`` warning; every recipient refused ->
the ``SMTP_INVALID_RECIPIENT`` operational error (the output still lists who refused and why). Every
other failure goes through ``map_smtp_exception``, the Email family's one mapper.
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib

from flowtide.activities._boundary import step_activity
from flowtide.activities._step import StepContext, StepResult
from flowtide.guards.connect import open_checked_socket
from flowtide.workflows.errors import StepFailure

# Replies that mean "not now": the server throttles or is busy, so a later attempt may succeed.
THROTTLE_REPLIES = frozenset({421, 450, 451, 452})
# Replies that mean the credentials (or their absence) are the problem, whatever the command.
AUTH_REPLIES = frozenset({530, 534, 535, 538})
# Headers the step builds itself; letting ``headers`` set them would hide recipients or fork the id.
RESERVED_HEADERS = frozenset({"from", "to", "cc", "bcc", "subject", "message-id", "date", "reply-to"})

# Every exception class aiosmtplib and smtplib export, with the code it means before the reply code is
# looked at. The lookup walks the MRO, so order does not matter; the unit test fails when a library
# release adds a class that is missing here.
SMTP_EXCEPTION_CODES: dict[type[BaseException], str] = {
    aiosmtplib.SMTPException: "SMTP_UNKNOWN_ERROR",
    aiosmtplib.SMTPResponseException: "SMTP_UNKNOWN_ERROR",
    aiosmtplib.SMTPServerDisconnected: "SMTP_CONNECTION_FAILED",
    aiosmtplib.SMTPConnectError: "SMTP_CONNECTION_FAILED",
    aiosmtplib.SMTPConnectResponseError: "SMTP_CONNECTION_FAILED",
    aiosmtplib.SMTPTimeoutError: "SMTP_TIMEOUT",
    aiosmtplib.SMTPConnectTimeoutError: "SMTP_TIMEOUT",
    aiosmtplib.SMTPReadTimeoutError: "SMTP_TIMEOUT",
    aiosmtplib.SMTPNotSupported: "SMTP_NOT_SUPPORTED",
    aiosmtplib.SMTPHeloError: "SMTP_REJECTED",
    aiosmtplib.SMTPDataError: "SMTP_REJECTED",
    aiosmtplib.SMTPAuthenticationError: "SMTP_AUTH_FAILED",
    aiosmtplib.SMTPSenderRefused: "SMTP_REJECTED",
    aiosmtplib.SMTPRecipientRefused: "SMTP_INVALID_RECIPIENT",
    aiosmtplib.SMTPRecipientsRefused: "SMTP_INVALID_RECIPIENT",
    smtplib.SMTPException: "SMTP_UNKNOWN_ERROR",
    smtplib.SMTPResponseException: "SMTP_UNKNOWN_ERROR",
    smtplib.SMTPServerDisconnected: "SMTP_CONNECTION_FAILED",
    smtplib.SMTPConnectError: "SMTP_CONNECTION_FAILED",
    smtplib.SMTPNotSupportedError: "SMTP_NOT_SUPPORTED",
    smtplib.SMTPHeloError: "SMTP_REJECTED",
    smtplib.SMTPDataError: "SMTP_REJECTED",
    smtplib.SMTPAuthenticationError: "SMTP_AUTH_FAILED",
    smtplib.SMTPSenderRefused: "SMTP_REJECTED",
    smtplib.SMTPRecipientsRefused: "SMTP_INVALID_RECIPIENT",
    # Below the SMTP layer: the socket, TLS and name resolution.
    ssl.SSLError: "SMTP_CONNECTION_FAILED",
    socket.gaierror: "SMTP_CONNECTION_FAILED",
    TimeoutError: "SMTP_TIMEOUT",
    ConnectionError: "SMTP_CONNECTION_FAILED",
    OSError: "SMTP_CONNECTION_FAILED",
}


def _reply_code(exc: BaseException) -> int | None:
    """The SMTP reply code an exception carries (aiosmtplib ``code``, smtplib ``smtp_code``)."""
    if not isinstance(exc, aiosmtplib.SMTPResponseException | smtplib.SMTPResponseException):
        return None
    code = getattr(exc, "code", None) or getattr(exc, "smtp_code", None)
    return code if isinstance(code, int) else None


def _refine(base: str, reply: int | None, text: str) -> str:
    """Let the reply code override the class-based code: throttling and auth look alike on every command."""
    if reply in THROTTLE_REPLIES:
        return "SMTP_RATE_LIMITED"
    if reply in AUTH_REPLIES:
        return "SMTP_AUTH_FAILED"
    if reply is not None and 400 <= reply < 500 and base in ("SMTP_REJECTED", "SMTP_INVALID_RECIPIENT",
                                                             "SMTP_AUTH_FAILED"):
        return "SMTP_UNKNOWN_ERROR"  # a 4xx is temporary by definition: retried optimistically
    if reply is not None and reply >= 500 and base in ("SMTP_UNKNOWN_ERROR", "SMTP_CONNECTION_FAILED"):
        return "SMTP_REJECTED"
    if base == "SMTP_UNKNOWN_ERROR" and "not supported" in text.lower():
        return "SMTP_NOT_SUPPORTED"  # aiosmtplib raises the base class for a missing STARTTLS / AUTH
    return base


def _refusals(exc: BaseException) -> dict[str, tuple[int, str]]:
    """Every refused recipient of an "all recipients refused" exception, from either library."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return {r.recipient: (r.code, r.message) for r in exc.recipients}
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return {str(a): (int(c), v.decode(errors="replace") if isinstance(v, bytes) else str(v))
                for a, (c, v) in exc.recipients.items()}
    return {}


def _all_refused(refused: dict[str, tuple[int, str]]) -> StepFailure:
    """The operational error for a message no recipient accepted; the output says who refused and why."""
    replies = [code for code, _ in refused.values()]
    if any(code >= 500 for code in replies):
        code = "SMTP_INVALID_RECIPIENT"
    else:
        code = "SMTP_RATE_LIMITED" if any(r in THROTTLE_REPLIES for r in replies) else "SMTP_UNKNOWN_ERROR"
    rejected = {addr: f"{c} {text}" for addr, (c, text) in refused.items()}
    listing = "; ".join(f"{addr}: {why}" for addr, why in rejected.items())
    return StepFailure(code, f"the SMTP server refused all {len(refused)} recipient(s): {listing}",
                       type="operational", provider_status=replies[0] if replies else None,
                       output={"accepted": [], "rejected": rejected, "messageId": None})


def map_smtp_exception(exc: BaseException) -> StepFailure | None:
    """The Email family's one mapper: any aiosmtplib, smtplib or socket exception to a taxonomy code.

    Args:
        exc: what the SMTP conversation raised.

    Returns:
        The ``StepFailure`` to report, or None when ``exc`` is not an SMTP or network error.
    """
    base = next((SMTP_EXCEPTION_CODES[k] for k in type(exc).__mro__ if k in SMTP_EXCEPTION_CODES), None)
    if base is None:
        return None
    refused = _refusals(exc)
    if refused:
        return _all_refused(refused)
    reply = _reply_code(exc)
    raw = getattr(exc, "message", None) or getattr(exc, "smtp_error", None) or str(exc) or type(exc).__name__
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    code = _refine(base, reply, text)
    detail = f"{type(exc).__module__}.{type(exc).__name__}"
    if reply is None:
        # A certificate that does not verify will not verify on the next attempt either (aiosmtplib wraps it).
        bad_cert = any(isinstance(e, ssl.SSLCertVerificationError) for e in (exc, exc.__cause__, exc.__context__))
        retryable = False if bad_cert else None
        return StepFailure(code, f"SMTP: {text}", retryable=retryable, detail=detail)
    # The server answered and said no: an operational error whose output shows the reply.
    return StepFailure(code, f"SMTP: {reply} {text}", type="operational", provider_status=reply, detail=detail,
                       output={"accepted": [], "rejected": {}, "messageId": None, "response": f"{reply} {text}"})


@dataclass
class _Request:
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def recipients(self) -> list[str]:
        seen: dict[str, None] = {}
        for addr in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(parseaddr(addr)[1], None)
        return list(seen)


def _addresses(value: Any, field: str) -> list[str]:
    """A list of addresses from a string (comma-separated allowed) or a list; malformed ones fail."""
    if value is None or value == "":
        return []
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else None
    if items is None:
        raise StepFailure("VALIDATION_ERROR", f"'{field}' must be an address or a list of addresses")
    if any(c in str(i) for i in items for c in "\r\n\x00"):
        # Header injection: a recipient with a line break would add headers or recipients of its own.
        raise StepFailure("VALIDATION_ERROR", f"'{field}' has a forbidden character (CR, LF or NUL)")
    out = []
    for name, addr in getaddresses([str(i) for i in items]):
        if "@" not in addr or any(c.isspace() for c in addr):
            raise StepFailure("SMTP_INVALID_RECIPIENT", f"'{field}' has a malformed address: {addr or name!r}")
        out.append(f"{name} <{addr}>" if name else addr)
    return out


def _message_id(ctx: StepContext, sender: str) -> str:
    """Stable across retries of one call, so a receiver can drop a duplicate of a retried send."""
    digest = hashlib.sha256(ctx.idempotency_key().encode()).hexdigest()[:32]
    domain = sender.rsplit("@", 1)[-1] or "flowtide.local"
    return f"<{digest}@{domain}>"


def _build_message(inp: dict[str, Any], req: _Request, ctx: StepContext) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = inp["from"]
    if req.to:
        msg["To"] = ", ".join(req.to)
    if req.cc:
        msg["Cc"] = ", ".join(req.cc)
    if inp.get("replyTo"):
        msg["Reply-To"] = ", ".join(_addresses(inp["replyTo"], "replyTo"))
    msg["Subject"] = str(inp.get("subject") or "")
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = str(inp.get("messageId") or _message_id(ctx, req.sender))
    for name, value in (inp.get("headers") or {}).items():
        if name.lower() in RESERVED_HEADERS:
            raise StepFailure("VALIDATION_ERROR", f"header '{name}' is set by its own input key, not 'headers'")
        if not name.isascii() or ":" in name or any(c in f"{name}{value}" for c in "\r\n"):
            raise StepFailure("VALIDATION_ERROR", f"header '{name}' has a forbidden character (CR, LF or ':')")
        msg[name] = str(value)
    text, html = inp.get("text"), inp.get("html")
    if text is None and html is None:
        raise StepFailure("VALIDATION_ERROR", "email.send needs 'text' or 'html' (or both)")
    msg.set_content(str(text if text is not None else ""))
    if html is not None:
        msg.add_alternative(str(html), subtype="html")
    return msg


def _timeout(inp: dict[str, Any], ctx: StepContext) -> float:
    # Keep each SMTP command under the step timeout so a stall reads SMTP_TIMEOUT, not the generic TIMEOUT.
    return min(float(inp.get("timeout") or ctx.timeout_s), ctx.timeout_s * 0.9)


def _port(inp: dict[str, Any]) -> int:
    return int(inp["port"]) if inp.get("port") else 465 if inp.get("tls") else 587 if inp.get("starttls") else 25


async def _client(inp: dict[str, Any], ctx: StepContext) -> aiosmtplib.SMTP:
    """An SMTP client on a socket already connected to an address the network guard permits."""
    if not inp.get("host"):
        raise StepFailure("VALIDATION_ERROR", "email.send needs 'host' (the SMTP server)")
    host, timeout = str(inp["host"]), _timeout(inp, ctx)
    # The name is resolved and checked once; aiosmtplib gets the socket (the name stays for TLS and SNI).
    sock = await open_checked_socket(host, _port(inp), timeout)
    try:
        return aiosmtplib.SMTP(
            hostname=host, sock=sock, username=inp.get("username") or None, password=inp.get("password") or None,
            use_tls=bool(inp.get("tls", False)), start_tls=inp.get("starttls"),
            validate_certs=bool(inp.get("validateCerts", True)), timeout=timeout)
    except BaseException:
        sock.close()
        raise


async def _close_quietly(smtp: aiosmtplib.SMTP) -> None:
    """QUIT, and never fail the step over it: the message is already accepted, a retry would resend it."""
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


@step_activity("email.send", map_smtp_exception)
async def email_send(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Send one message; see the module docstring for the input and output shapes.

    Args:
        inp: the rendered step input, secrets resolved.
        ctx: the call's context (timeout, idempotency key, console).

    Returns:
        The accepted and rejected recipients and the Message-ID; a warning when some were rejected.
    """
    sender = parseaddr(str(inp.get("from") or ""))[1]
    if any(c in str(inp.get("from") or "") for c in "\r\n\x00"):
        raise StepFailure("VALIDATION_ERROR", "'from' has a forbidden character (CR, LF or NUL)")
    if "@" not in sender:
        raise StepFailure("VALIDATION_ERROR", "email.send needs a valid 'from' address")
    req = _Request(sender, _addresses(inp.get("to"), "to"), _addresses(inp.get("cc"), "cc"),
                   _addresses(inp.get("bcc"), "bcc"))
    if not req.recipients:
        raise StepFailure("VALIDATION_ERROR", "email.send needs at least one recipient in 'to', 'cc' or 'bcc'")
    try:
        msg = _build_message(inp, req, ctx)
    except ValueError as exc:  # the email package refuses CR/LF in a header value (header injection)
        raise StepFailure("VALIDATION_ERROR", f"the message cannot be built: {exc}") from None
    try:
        smtp = await _client(inp, ctx)
        ctx.log(f"SMTP {inp['host']}:{_port(inp)}: {len(req.recipients)} recipient(s), "
                f"Message-ID {msg['Message-ID']}")
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            if smtp.sock is not None:
                smtp.sock.close()  # ours, opened by the guard: aiosmtplib leaves it open when connecting fails
            raise
        try:
            refused, reply = await smtp.send_message(msg, sender=req.sender, recipients=req.recipients)
        except BaseException:
            smtp.close()  # no QUIT to a server that just failed us: it could stall for another timeout
            raise
        await _close_quietly(smtp)
    except TimeoutError as exc:
        # aiosmtplib's timeouts subclass TimeoutError, which the boundary would read as its own step timeout.
        raise map_smtp_exception(exc) or exc from exc
    rejected = {addr: f"{r.code} {r.message}" for addr, r in refused.items()}
    accepted = [a for a in req.recipients if a not in refused]
    ctx.log(f"accepted {len(accepted)}, rejected {len(rejected)}: {reply}")
    output = {"accepted": accepted, "rejected": rejected, "messageId": msg["Message-ID"], "response": reply}
    return StepResult(output, warnings=[_partial(refused, len(req.recipients))] if refused else [])


def _partial(refused: dict[str, Any], total: int) -> StepFailure:
    """The warning for a message some recipients refused: it was delivered, so the step succeeds."""
    listing = "; ".join(f"{addr}: {r.code} {r.message}" for addr, r in refused.items())
    return StepFailure("SMTP_PARTIAL_DELIVERY", f"{len(refused)} of {total} recipient(s) rejected: {listing}",
                       type="operational", provider_status=next(iter(refused.values())).code, severity="warning")
