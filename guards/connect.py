"""The network guard for what is not an async httpx call: SMTP sockets and blocking token requests.

Both decide through ``guards.network`` (the one policy, ``FLOWTIDE_HTTP_ALLOW`` read at call time) and
connect to a checked address, never to the name again, exactly like ``GuardedBackend``. A refusal raises
``DestinationBlocked`` (``HTTP_DESTINATION_BLOCKED``, never retried) before a packet leaves.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable

import httpcore
import httpx

from flowtide.guards import network, tracing
from flowtide.guards.netpolicy import IPAddress, parse_allow
from flowtide.guards.network import addresses_of, check_scheme, checked_addresses, permitted_of, precheck


async def open_checked_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected to a permitted address of ``host`` (tried in resolver order).

    Raises:
        DestinationBlocked: every address of ``host`` is refused by the policy.
        TimeoutError, OSError: resolving or connecting failed.
    """
    deadline = time.monotonic() + timeout
    permitted = await checked_addresses(host, port, timeout)
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for addr in permitted:
        sock = socket.socket(socket.AF_INET6 if addr.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await loop.sock_connect(sock, (str(addr), port))
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


def _sync_permitted(host: str, port: int) -> list[IPAddress]:
    allow = parse_allow(network._env_allow())
    name, addresses = precheck(host, allow)
    if not addresses:
        addresses = addresses_of(network._system_resolve(host, port), host)
    return permitted_of(host, name, addresses, allow)


class GuardedSyncBackend(httpcore.SyncBackend):
    """The blocking twin of ``GuardedBackend``: resolve once, check, connect to the checked IP only."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        try:
            permitted = _sync_permitted(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for addr in permitted:
            try:
                return super().connect_tcp(str(addr), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable")


class _GuardedSyncTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                             network_backend=GuardedSyncBackend())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_scheme(request.url)
        if not tracing.enabled():
            return super().handle_request(request)
        with tracing.outbound(request.method, request.url, request.headers) as span:  # as GuardedTransport
            response = super().handle_request(request)
            tracing.answered(span, response.status_code)
            return response


def guarded_sync_client(timeout: float) -> httpx.Client:
    """A blocking ``httpx.Client`` that only reaches permitted destinations and never follows a redirect."""
    return httpx.Client(transport=_GuardedSyncTransport(), timeout=timeout, follow_redirects=False,
                        trust_env=False)


def destination_refusal(url: str) -> str | None:
    """Why the guard would refuse ``url`` now (one line), or None: for a URL saved now and used later.

    A connection's token URL is checked when it is saved and again at every use. A name that does not resolve
    now is not refused here: the guard at the moment of use judges the addresses it then connects to.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        return f"not a URL ({exc})"
    if not parsed.host:
        return "must be an http(s) URL with a host"
    try:
        check_scheme(parsed)
        _sync_permitted(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except network.DestinationBlocked as exc:
        return exc.message
    except OSError:
        return None
    return None
