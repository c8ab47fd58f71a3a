"""email.send against a real SMTP server (aiosmtpd on 127.0.0.1), through the real activity boundary."""

from __future__ import annotations

import asyncio
import inspect
import smtplib
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.email import SMTP_EXCEPTION_CODES, email_send, map_smtp_exception
from flowtide.workflows.errors import TAXONOMY
from tests.support.activities import step_task

# The test server takes AUTH over plain TCP on loopback; aiosmtpd warns about that on every connection.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """Accepts mail, refuses ``bad*`` recipients (550), throttles ``busy*`` (451) and ``throttle*`` senders (421)."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_MAIL(self, server: Any, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if address.startswith("throttle"):
            return "421 4.7.0 Too many messages, slow down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if address.startswith("bad"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy"):
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if b"Subject: spam" in (envelope.content or b""):
            return "554 5.7.1 Message rejected as spam"
        self.messages.append(envelope)
        return "250 2.0.0 Ok: queued as ABC123"


def check_password(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = getattr(auth_data, "login", None) == b"robot" and getattr(auth_data, "password", None) == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Controller, Mailbox]]:
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, box
    ctl.stop()


@pytest.fixture(scope="module")
def smtp_auth() -> Iterator[tuple[Controller, Mailbox]]:
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=check_password,
                     auth_required=True, auth_require_tls=False)
    ctl.start()
    yield ctl, box
    ctl.stop()


def task(inp: dict[str, Any], *, timeout: float = 10, retries: int = 1) -> dict[str, Any]:
    return step_task("email.send", inp, step_id="notify", title="Notify", timeout=timeout,
                     retry={"maxRetries": retries})


def mail(port: int, **kw: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from": "Flowtide <robot@example.com>",
            "to": ["ann@example.com"], "subject": "Hello", "text": "Hi there", **kw}


async def run(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return await ActivityEnvironment().run(email_send, task(inp, **kw))


async def fail(inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await run(inp, **kw)
    return info.value


async def test_sends_to_every_recipient(smtp):
    ctl, box = smtp
    res = await run(mail(ctl.port, cc="cat@example.com", bcc=["dan@example.com"], html="<b>Hi</b>",
                         headers={"X-Flow": "demo"}))
    out = res["output"]
    assert out["accepted"] == ["ann@example.com", "cat@example.com", "dan@example.com"]
    assert out["rejected"] == {} and res["warnings"] == []
    assert out["messageId"].startswith("<") and out["messageId"].endswith("@example.com>")
    assert "queued as ABC123" in out["response"]
    sent = message_from_bytes(box.messages[-1].original_content or b"")
    assert sent["X-Flow"] == "demo" and sent["Bcc"] is None and sent["Message-ID"] == out["messageId"]
    assert sorted(box.messages[-1].rcpt_tos) == ["ann@example.com", "cat@example.com", "dan@example.com"]


async def test_message_id_is_stable_across_retries(smtp):
    ctl, _ = smtp
    first = await run(mail(ctl.port))
    again = await run(mail(ctl.port))
    assert first["output"]["messageId"] == again["output"]["messageId"]


async def test_partial_rejection_is_a_warning(smtp):
    ctl, _ = smtp
    res = await run(mail(ctl.port, to=["ann@example.com", "bad@example.com"]))
    assert res["output"]["accepted"] == ["ann@example.com"]
    assert res["output"]["rejected"]["bad@example.com"].startswith("550")
    [warning] = res["warnings"]
    assert warning["code"] == "SMTP_PARTIAL_DELIVERY" and warning["severity"] == "warning"
    assert warning["type"] == "operational" and warning["providerStatus"] == 550
    assert "bad@example.com" in warning["message"]


async def test_all_recipients_rejected_is_an_operational_error(smtp):
    ctl, _ = smtp
    err = await fail(mail(ctl.port, to=["bad1@example.com", "bad2@example.com"]))
    record, output, _console = err.details
    assert err.type == "SMTP_INVALID_RECIPIENT" and err.non_retryable
    assert record["type"] == "operational" and record["providerStatus"] == 550
    assert output["accepted"] == [] and set(output["rejected"]) == {"bad1@example.com", "bad2@example.com"}


async def test_greylisted_recipients_are_rate_limited_and_retryable(smtp):
    ctl, _ = smtp
    err = await fail(mail(ctl.port, to=["busy@example.com"]))
    assert err.type == "SMTP_RATE_LIMITED" and not err.non_retryable
    assert err.details[0]["providerStatus"] == 451


async def test_throttled_sender_is_rate_limited(smtp):
    ctl, _ = smtp
    err = await fail(mail(ctl.port, **{"from": "throttle@example.com"}))
    assert err.type == "SMTP_RATE_LIMITED" and not err.non_retryable
    assert err.details[0]["providerStatus"] == 421 and "slow down" in err.details[0]["message"]


async def test_data_rejection_is_smtp_rejected(smtp):
    ctl, _ = smtp
    err = await fail(mail(ctl.port, subject="spam"))
    assert err.type == "SMTP_REJECTED" and err.non_retryable
    assert err.details[0]["providerStatus"] == 554 and err.details[1]["response"].startswith("554")


async def test_auth_success_and_failure_with_secret_redaction(smtp_auth, monkeypatch):
    ctl, box = smtp_auth
    monkeypatch.setenv("FLOWTIDE_SECRET_SMTP_PASSWORD", "s3cret")
    res = await run(mail(ctl.port, username="robot", password="{{ secrets.SMTP_PASSWORD }}"))
    assert res["output"]["accepted"] == ["ann@example.com"] and len(box.messages) == 1
    monkeypatch.setenv("FLOWTIDE_SECRET_SMTP_PASSWORD", "wrong-pass")
    err = await fail(mail(ctl.port, username="robot", password="{{ secrets.SMTP_PASSWORD }}"))
    assert err.type == "SMTP_AUTH_FAILED" and err.non_retryable
    assert err.details[0]["providerStatus"] == 535
    assert "wrong-pass" not in repr(err.details)


async def test_auth_required_but_not_given(smtp_auth):
    ctl, _ = smtp_auth
    err = await fail(mail(ctl.port))
    assert err.type == "SMTP_AUTH_FAILED" and err.details[0]["providerStatus"] == 530


async def test_auth_on_a_server_without_auth_is_not_supported(smtp):
    ctl, _ = smtp
    err = await fail(mail(ctl.port, username="robot", password="x", starttls=False))
    assert err.type == "SMTP_NOT_SUPPORTED" and err.non_retryable


@pytest.fixture(scope="module")
def smtp_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Controller, Mailbox]]:
    """Implicit TLS with a self-signed certificate that no client trusts."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    ctl.start()
    yield ctl, box
    ctl.stop()


async def test_untrusted_certificate_is_not_retried(smtp_tls):
    ctl, box = smtp_tls
    err = await fail(mail(ctl.port, tls=True))
    assert err.type == "SMTP_CONNECTION_FAILED" and err.non_retryable
    assert "CERTIFICATE_VERIFY_FAILED" in str(err)
    res = await run(mail(ctl.port, tls=True, validateCerts=False))
    assert res["output"]["accepted"] == ["ann@example.com"] and len(box.messages) == 1


async def test_connection_refused():
    err = await fail(mail(free_port()))
    assert err.type == "SMTP_CONNECTION_FAILED" and not err.non_retryable
    assert err.details[0]["type"] == "execution" and err.details[1] is None


async def test_silent_server_times_out():
    server = await asyncio.start_server(lambda r, w: asyncio.sleep(30), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        err = await fail(mail(port, timeout=0.3))
    finally:
        server.close()
    assert err.type == "SMTP_TIMEOUT" and not err.non_retryable


async def test_bad_input_fails_before_connecting():
    assert (await fail(mail(1, to="not an address"))).type == "SMTP_INVALID_RECIPIENT"
    assert (await fail(mail(1, headers={"Bcc": "x@example.com"}))).type == "VALIDATION_ERROR"
    assert (await fail(mail(1, headers={"X-A": "a\r\nBcc: x@example.com"}))).type == "VALIDATION_ERROR"
    assert (await fail(mail(1, subject="hi\r\nBcc: x@example.com"))).type == "VALIDATION_ERROR"
    assert (await fail(mail(1, text=None))).type == "VALIDATION_ERROR"
    assert (await fail(mail(1, to=[]))).type == "VALIDATION_ERROR"


def exported_exceptions() -> list[type[BaseException]]:
    found = []
    for module in (aiosmtplib, smtplib):
        for name in dir(module):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith(
                    module.__name__):
                found.append(obj)
    return found


def instance(cls: type[BaseException]) -> BaseException:
    if cls in (aiosmtplib.SMTPRecipientsRefused,):
        return cls([aiosmtplib.SMTPRecipientRefused(550, "no", "a@example.com")])
    if cls is smtplib.SMTPRecipientsRefused:
        return cls({"a@example.com": (550, b"no")})
    for args in (("boom",), (550, "boom"), (550, "boom", "a@example.com")):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


def test_every_exported_smtp_exception_is_mapped():
    classes = exported_exceptions()
    assert len(classes) >= 20  # both libraries were inspected
    unmapped = [c for c in classes if c not in SMTP_EXCEPTION_CODES]
    assert unmapped == [], f"add these to SMTP_EXCEPTION_CODES: {unmapped}"
    for cls in classes:
        failure = map_smtp_exception(instance(cls))
        assert failure is not None, cls
        assert TAXONOMY[failure.code].family == "Email", (cls, failure.code)


@pytest.mark.parametrize(("exc", "code"), [
    (aiosmtplib.SMTPResponseException(421, "closing"), "SMTP_RATE_LIMITED"),
    (aiosmtplib.SMTPResponseException(452, "too many recipients"), "SMTP_RATE_LIMITED"),
    (aiosmtplib.SMTPSenderRefused(530, "auth required", "a@x"), "SMTP_AUTH_FAILED"),
    (aiosmtplib.SMTPDataError(450, "mailbox busy"), "SMTP_RATE_LIMITED"),
    (aiosmtplib.SMTPDataError(554, "rejected"), "SMTP_REJECTED"),
    (aiosmtplib.SMTPRecipientRefused(454, "temp", "a@x"), "SMTP_UNKNOWN_ERROR"),
    (aiosmtplib.SMTPConnectResponseError(554, "no service"), "SMTP_REJECTED"),
    (aiosmtplib.SMTPConnectTimeoutError("slow"), "SMTP_TIMEOUT"),
    (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."), "SMTP_NOT_SUPPORTED"),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), "SMTP_AUTH_FAILED"),
    (smtplib.SMTPRecipientsRefused({"a@x": (451, b"later")}), "SMTP_RATE_LIMITED"),
    (ConnectionRefusedError(111, "refused"), "SMTP_CONNECTION_FAILED"),
    (socket.gaierror(-2, "Name or service not known"), "SMTP_CONNECTION_FAILED"),
])
def test_reply_codes_refine_the_class_code(exc, code):
    failure = map_smtp_exception(exc)
    assert failure is not None and failure.code == code


def test_unrelated_exceptions_are_left_to_the_boundary():
    assert map_smtp_exception(KeyError("x")) is None
