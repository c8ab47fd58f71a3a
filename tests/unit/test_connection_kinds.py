"""Each connection kind applied by the activity boundary to the step kinds that take one (real servers).

The step's activity runs in-process (``ActivityEnvironment``) with the task the interpreter sends: only the
connection's name travels; the credential comes from the service database and is redacted from the output.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.email import email_send
from flowtide.activities.http import http_request
from flowtide.activities.llm import llm_chat
from flowtide.store.connections import Connections
from tests.support.activities import step_task
from tests.support.llm_server import KEY, LLMServer
from tests.unit.test_email_activity import Mailbox, check_password, free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


async def run(impl: Any, kind: str, inp: dict[str, Any], connection: str) -> dict[str, Any]:
    task = step_task(kind, inp, retry={"maxRetries": 0})
    task["connection"] = connection
    return dict(await ActivityEnvironment().run(impl, task))


async def test_api_key_and_basic_on_http_are_sent_and_redacted(conns: Connections, service: Any) -> None:
    value = "key-" + secrets.token_hex(10)
    conns.add("billing", "api-key", {"header": "X-Api-Key", "value": value})
    conns.add("legacy", "basic", {"username": "ann", "password": "pw-" + secrets.token_hex(8)})
    out = await run(http_request, "core.http", {"url": service.url + "/echo"}, "billing")
    assert out["output"]["body"]["headers"]["x-api-key"] == "***"
    out = await run(http_request, "core.http", {"url": service.url + "/echo", "auth": {"type": "bearer",
                                                                                      "token": "ignored"}}, "legacy")
    assert out["output"]["body"]["headers"]["authorization"] == "Basic ***"


async def test_a_connection_header_never_follows_a_redirect_to_another_origin(conns: Connections,
                                                                               service: Any) -> None:
    """httpx drops only Authorization on a cross-origin redirect; an api-key header stays home too."""
    conns.add("billing", "api-key", {"header": "X-Api-Key", "value": "key-" + secrets.token_hex(10)})
    same = f"{service.url}/redirect?to={service.url}/echo"
    other = f"{service.url}/redirect?to={service.url.replace('127.0.0.1', 'localhost')}/echo"
    out = await run(http_request, "core.http", {"url": same}, "billing")
    assert out["output"]["body"]["headers"]["x-api-key"] == "***"  # same origin: sent (and redacted here)
    out = await run(http_request, "core.http", {"url": other}, "billing")
    assert "x-api-key" not in out["output"]["body"]["headers"], out["output"]["body"]["headers"]


async def test_bearer_on_llm(conns: Connections) -> None:
    conns.add("openai", "bearer", {"token": KEY})
    with LLMServer() as llm:
        out = await run(llm_chat, "llm.chat", {"baseUrl": llm.url, "model": "ok", "prompt": "hi"}, "openai")
    assert out["output"]["content"] == "echo: hi"


async def test_basic_on_email_and_a_kind_that_does_not_fit(conns: Connections) -> None:
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=check_password,
                     auth_required=True, auth_require_tls=False)
    ctl.start()
    try:
        conns.add("smtp", "basic", {"username": "robot", "password": "s3cret"})
        conns.add("token", "bearer", {"token": "t-" + secrets.token_hex(8)})
        mail = {"host": "127.0.0.1", "port": ctl.port, "from": "robot@example.com", "to": ["ann@example.com"],
                "subject": "Hello", "text": "Hi"}
        await run(email_send, "email.send", mail, "smtp")
        assert len(box.messages) == 1
        with pytest.raises(ApplicationError) as info:
            await run(email_send, "email.send", mail, "token")
        assert info.value.type == "VALIDATION_ERROR" and "takes a basic connection" in str(info.value)
    finally:
        ctl.stop()


async def test_missing_connection_and_missing_key(conns: Connections, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ApplicationError) as info:
        await run(http_request, "core.http", {"url": "http://127.0.0.1:9/"}, "nope")
    assert info.value.type == "AUTH_MISSING" and info.value.non_retryable
    assert "No connection named 'nope' is attached to this step" in str(info.value)
    conns.add("crm", "bearer", {"token": "t-" + secrets.token_hex(8)})
    monkeypatch.delenv("FLOWTIDE_SECRET_KEY")
    with pytest.raises(ApplicationError) as info:
        await run(http_request, "core.http", {"url": "http://127.0.0.1:9/"}, "crm")
    assert info.value.type == "AUTH_MISSING" and "FLOWTIDE_SECRET_KEY" in str(info.value)
