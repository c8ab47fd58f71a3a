"""Network guard for outbound HTTP (SSRF protection), enforced on the address actually connected.

Every connection an httpx client opens goes through ``GuardedBackend.connect_tcp`` (an httpcore network
backend): the host is resolved once, every candidate address is checked against the policy of
``guards.netpolicy`` and ``FLOWTIDE_HTTP_ALLOW`` (read at call time), and the socket is opened to a
checked IP, never to the name again, so DNS rebinding between check and connect is impossible. Redirects
need no special care: each new origin is a new connection through the same backend.

TLS keeps working unchanged: httpcore takes the SNI name and the ``Host`` header from the URL, not from the
socket, so connecting to the IP changes neither.

Refusals raise ``DestinationBlocked`` (a ``StepFailure`` with code ``HTTP_DESTINATION_BLOCKED``,
``retryable=False``) before any packet leaves for the refused address. Use ``guarded_client`` (or
``GuardedTransport``) for every outbound HTTP call of the worker.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.to_thread
import httpcore
import httpx

from flowtide.guards import tracing
from flowtide.guards.netpolicy import (
    ALLOWED_SCHEMES,
    AllowList,
    IPAddress,
    Verdict,
    check_address,
    hostname_verdict,
    normalise_host,
    parse_allow,
)
from flowtide.workflows.errors import StepFailure

ALLOW_ENV = "FLOWTIDE_HTTP_ALLOW"
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)

# getaddrinfo's signature; tests swap in a fake to model DNS answers without a network.
Resolver = Callable[[str, int], list[tuple[Any, ...]]]


class DestinationBlocked(StepFailure):
    """The guard refused a destination; never retryable (the same URL is refused again)."""

    def __init__(self, message: str, *, host: str, addresses: Iterable[str] = ()) -> None:
        super().__init__("HTTP_DESTINATION_BLOCKED", message, retryable=False,
                         detail=f"set {ALLOW_ENV} on the worker to allow it (hosts, IPs or CIDRs, comma-separated)")
        self.host = host
        self.addresses = list(addresses)


def _system_resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def check_scheme(url: httpx.URL) -> None:
    """Refuse every scheme but http and https (``file://``, ``gopher://``, ``ftp://`` ...).

    Args:
        url: the URL about to be requested (the first one or a redirect target).

    Raises:
        DestinationBlocked: the scheme is not http or https.
    """
    if url.scheme not in ALLOWED_SCHEMES:
        raise DestinationBlocked(f"scheme '{url.scheme}' is not allowed: HTTP steps only reach http and https URLs",
                                 host=url.host)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that resolves, checks, then connects to the checked IP only.

    Args:
        resolver: blocking ``(host, port) -> getaddrinfo() list``; run in a worker thread.
        allow: the allow-list text; ``None`` reads ``FLOWTIDE_HTTP_ALLOW`` at every connection.
    """

    def __init__(self, resolver: Resolver | None = None, allow: str | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()  # AnyIO runs on asyncio and trio alike
        self._resolver = resolver
        self._allow = allow

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            permitted = await checked_addresses(host, port, timeout, resolver=self._resolver, allow=self._allow)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving '{host}' timed out") from exc
        except OSError as exc:  # socket.gaierror and friends: httpx turns it into ConnectError
            raise httpcore.ConnectError(str(exc)) from exc
        return await self._connect_first(permitted, port, deadline, local_address, socket_options)

    async def _connect_first(self, permitted: list[IPAddress], port: int, deadline: float | None,
                             local_address: str | None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
                             ) -> httpcore.AsyncNetworkStream:
        # Candidates are tried in resolver order, one at a time, each with what is left of the timeout.
        last: Exception | None = None
        for addr in permitted:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await self._inner.connect_tcp(str(addr), port, timeout=remaining,
                                                     local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise DestinationBlocked("unix sockets are not reachable from HTTP steps", host=path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)




def _env_allow() -> str:
    return os.environ.get(ALLOW_ENV, "")


def precheck(host: str, allow: AllowList) -> tuple[str, list[IPAddress]]:
    """The normalised name and the addresses its spelling alone gives (none: ask DNS), or a refusal."""
    name = normalise_host(host)
    verdict = hostname_verdict(name, allow)
    if verdict.blocked:
        raise DestinationBlocked(f"destination '{host}' is blocked: {verdict.reason}", host=host)
    return name, list(verdict.addresses)


def permitted_of(host: str, name: str, addresses: list[IPAddress], allow: AllowList) -> list[IPAddress]:
    """The candidate addresses the policy lets us connect to; ``DestinationBlocked`` when none is left."""
    permitted: list[IPAddress] = []
    refused: list[tuple[IPAddress, Verdict]] = []
    for addr in addresses:
        v = check_address(addr, name, allow)
        if v.blocked:
            refused.append((addr, v))
        else:
            permitted.append(addr)
    if not permitted:
        reasons = "; ".join(f"{a} is {v.reason}" for a, v in refused)
        raise DestinationBlocked(f"destination '{host}' is blocked: {reasons}", host=host,
                                 addresses=[str(a) for a, _ in refused])
    return permitted


def addresses_of(infos: list[tuple[Any, ...]], host: str) -> list[IPAddress]:
    """The distinct addresses of a ``getaddrinfo`` answer, in its order (``OSError`` when there are none)."""
    seen: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # scope ids do not change the class of the address
        addr = ipaddress.ip_address(raw)
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise OSError(f"'{host}' resolved to no address")
    return seen


async def checked_addresses(host: str, port: int, timeout: float | None, *, resolver: Resolver | None = None,
                            allow: str | None = None) -> list[IPAddress]:
    """The addresses of ``host`` that the policy permits, resolved once: connect to these, never to the name.

    Every outbound connection of the worker (HTTP, LLM, SMTP, token requests, PostgreSQL) is decided here.

    Args:
        host: the destination's host name or literal address.
        port: its port (for the resolver).
        timeout: seconds for the DNS query.
        resolver: a replacement for ``socket.getaddrinfo`` (tests).
        allow: a fixed allow list instead of ``FLOWTIDE_HTTP_ALLOW`` (read now).

    Raises:
        DestinationBlocked: the name or every address it resolves to is refused.
        TimeoutError: DNS did not answer in time.
        OSError: the name does not resolve.
    """
    allow_list = parse_allow(allow if allow is not None else _env_allow())
    name, addresses = precheck(host, allow_list)
    if not addresses:  # literal IPs (every spelling) and localhost names never go to DNS
        with anyio.fail_after(timeout):
            infos = await anyio.to_thread.run_sync(functools.partial(resolver or _system_resolve, host, port),
                                                   abandon_on_cancel=True)
        addresses = addresses_of(infos, host)
    return permitted_of(host, name, addresses, allow_list)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~30 ms of CPU on the event loop; one verifying context serves every call.
    return httpx.create_ssl_context(verify=True, trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through ``GuardedBackend``; no proxies, no UDS.

    Args:
        verify: TLS verification (``True``, a CA bundle path or an ``ssl.SSLContext``).
        resolver: see ``GuardedBackend``.
        allow: see ``GuardedBackend``.
        limits: the pool limits.
    """

    def __init__(self, *, verify: Any = True, resolver: Resolver | None = None, allow: str | None = None,
                 limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        ssl_context = _default_ssl_context() if verify is True else httpx.create_ssl_context(verify=verify,
                                                                                              trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # The parent built a pool with the default backend; rebuild it with the guard. A proxy would
        # make the guard check the proxy instead of the destination, so none is ever configured.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(resolver=resolver, allow=allow),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_scheme(request.url)  # every hop of a redirect chain passes here
        if not tracing.enabled():
            return await super().handle_async_request(request)
        with tracing.outbound(request.method, request.url, request.headers) as span:  # the W3C traceparent
            response = await super().handle_async_request(request)
            tracing.answered(span, response.status_code)
            return response


def guarded_client(*, timeout: httpx.Timeout | float | None = 30.0, follow_redirects: bool = True,
                   max_redirects: int = 10, verify: Any = True, resolver: Resolver | None = None,
                   allow: str | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that can only reach destinations the guard permits.

    Args:
        timeout: httpx timeout (per connect, read, write and pool wait).
        follow_redirects: follow 3xx answers (each hop is checked again).
        max_redirects: how many hops before ``httpx.TooManyRedirects``.
        verify: TLS verification setting.
        resolver: a replacement for ``socket.getaddrinfo`` (tests).
        allow: a fixed allow list instead of ``FLOWTIDE_HTTP_ALLOW``.

    Returns:
        A client to use in ``async with``; environment proxies and ``.netrc`` are ignored.
    """
    return httpx.AsyncClient(transport=GuardedTransport(verify=verify, resolver=resolver, allow=allow),
                             timeout=timeout, follow_redirects=follow_redirects, max_redirects=max_redirects,
                             trust_env=False)


# ---- a connection pool shared by the calls of one worker ------------------------------------------
SHARED_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=5.0)
# event loop -> allow-list text -> pooled transport. Keyed by the allow list, so a connection opened
# under one list is never reused under another; keyed by the loop, because connections belong to one.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GuardedTransport]] = (
    weakref.WeakKeyDictionary())


class _Borrowed(httpx.AsyncBaseTransport):
    """A pooled transport lent to one client: closing the client leaves the pool open."""

    def __init__(self, pool: GuardedTransport) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def pooled_client(*, timeout: httpx.Timeout | float | None = 30.0, follow_redirects: bool = True,
                  max_redirects: int = 10, secrets: list[str] | None = None) -> httpx.AsyncClient:
    """Like ``guarded_client``, with connections kept alive between calls on this event loop.

    Every new connection is checked by the guard exactly as before; a kept-alive one was checked when it
    was opened, for the same allow list. The client itself (cookies, redirects, timeouts) is new per call,
    so nothing else is shared between steps or runs. Saves a TCP (and TLS) handshake per call.
    """
    allow = _env_allow()
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    pool = pools.get(allow)
    if pool is None:
        pool = pools[allow] = GuardedTransport(allow=allow, limits=SHARED_LIMITS)
    hooks = {"request": [_secrets_stay_home([s for s in secrets or [] if s])]} if secrets else {}
    return httpx.AsyncClient(transport=_Borrowed(pool), timeout=timeout, follow_redirects=follow_redirects,
                             max_redirects=max_redirects, trust_env=False, event_hooks=hooks)


def _secrets_stay_home(secrets: list[str]) -> Any:
    """A request hook: on a redirect to another origin, drop every header that carries one of ``secrets`` (an
    api-key connection's header, a ``{{ secrets.X }}`` in a header); httpx itself drops only Authorization."""
    first: list[tuple[str, str, int | None]] = []

    async def hook(request: httpx.Request) -> None:
        origin = (request.url.scheme, request.url.host, request.url.port)
        if not first:
            first.append(origin)
        elif origin != first[0]:
            for name, value in list(request.headers.items()):
                if any(s in value for s in secrets):
                    del request.headers[name]

    return hook


async def close_pools() -> None:
    """Close this event loop's kept-alive connections (a worker calls it once it has shut down)."""
    for pool in (_POOLS.pop(asyncio.get_running_loop(), None) or {}).values():
        await pool.aclose()
