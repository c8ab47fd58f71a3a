"""One guard for the network: llm.chat, email.send and OAuth2 token requests go through the destination guard.

Each destination is a real server on 127.0.0.1 that counts what reaches it; ``FLOWTIDE_HTTP_ALLOW`` is set
to a list without loopback, so the guard must refuse with ``HTTP_DESTINATION_BLOCKED`` and the server must
see nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.connection.oauth import access_token
from flowtide.activities.email import email_send
from flowtide.activities.llm import llm_chat
from flowtide.store.connections import Connections
from flowtide.workflows.errors import StepFailure
from tests.support.activities import step_task
from tests.support.llm_server import KEY, LLMServer, OpenAIish
from tests.support.oauth_server import OAuthWorld

NO_LOOPBACK = "192.0.2.10"  # an allow list that does not cover 127.0.0.1


@pytest.fixture
def no_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", NO_LOOPBACK)


async def fails(activity: Any, kind: str, inp: dict[str, Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activity, step_task(kind, inp, timeout=10))
    return info.value


async def test_llm_base_url_on_loopback_not_allowed_is_refused(no_loopback: None) -> None:
    with LLMServer() as llm:
        before = len(OpenAIish.received)
        err = await fails(llm_chat, "llm.chat", {"baseUrl": llm.url, "apiKey": KEY, "model": "ok", "prompt": "hi"})
        assert err.type == "HTTP_DESTINATION_BLOCKED" and err.non_retryable
        assert "loopback" in str(err) and len(OpenAIish.received) == before


class Listener:
    """A TCP server that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def listener() -> AsyncIterator[tuple[Listener, int]]:
    lst = Listener()
    port = await lst.start()
    yield lst, port
    assert lst.server is not None
    lst.server.close()
    await lst.server.wait_closed()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1"])
async def test_smtp_host_on_loopback_not_allowed_is_refused(no_loopback: None, listener: tuple[Listener, int],
                                                            host: str) -> None:
    lst, port = listener
    err = await fails(email_send, "email.send", {"host": host, "port": port, "from": "a@example.com",
                                                 "to": "b@example.com", "subject": "s", "text": "t"})
    assert err.type == "HTTP_DESTINATION_BLOCKED" and err.non_retryable
    await asyncio.sleep(0.05)
    assert lst.accepted == 0


def oauth(conns: Connections, world: OAuthWorld, token_url: str) -> Any:
    conns.add("crm", "oauth2", {"tokenUrl": token_url, "clientId": world.client_id,
                                "clientSecret": world.client_secret, "refreshToken": world.refresh_token})
    c = conns.get("crm")
    assert c is not None
    return c


async def test_token_url_on_loopback_not_allowed_is_refused_at_use(conns: Connections,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with OAuthWorld() as world:
        c = oauth(conns, world, world.url + "/token")  # saved while it was allowed (or before the check existed)
        monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", NO_LOOPBACK)
        with pytest.raises(StepFailure) as info:
            await access_token(conns, c)
        assert info.value.code == "HTTP_DESTINATION_BLOCKED" and "loopback" in str(info.value)
        assert world.grants == []


async def test_token_request_is_never_redirected(conns: Connections, service: Any) -> None:
    with OAuthWorld() as world:
        c = oauth(conns, world, f"{service.url}/redirect?to={world.url}/token")
        with pytest.raises(StepFailure) as info:
            await access_token(conns, c)
        assert info.value.code == "HTTP_DESTINATION_BLOCKED" and "redirect" in str(info.value)
        assert world.grants == []
