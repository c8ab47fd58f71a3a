"""A destination check outside a request: may a URL that is saved now (a connection's token URL) be reached?

The same policy as HTTP steps (``_netpolicy`` and ``FLOWTIDE_HTTP_ALLOW``): the scheme, the host name, its
literal address or, for other names, every address DNS gives now. A name that does not resolve now is not
refused here: the guard of the moment of use judges the addresses it then connects to.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

import httpx

from flowtide.activities._netguard import ALLOW_ENV
from flowtide.activities._netpolicy import ALLOWED_SCHEMES, check_address, hostname_verdict, normalise_host, parse_allow

Resolver = Callable[[str, int], list[tuple[Any, ...]]]


def destination_refusal(url: str, resolver: Resolver | None = None) -> str | None:
    """Why HTTP steps would refuse ``url``'s destination (one line), or None when it is allowed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        return f"not a URL ({exc})"
    if parsed.scheme not in ALLOWED_SCHEMES or not parsed.host:
        return "must be an http(s) URL with a host"
    allow = parse_allow(os.environ.get(ALLOW_ENV, ""))
    name = normalise_host(parsed.host)
    verdict = hostname_verdict(name, allow)
    if verdict.blocked:
        return f"destination '{parsed.host}' is blocked: {verdict.reason}"
    addresses = list(verdict.addresses)
    if not addresses:
        try:
            infos = (resolver or socket.getaddrinfo)(parsed.host, parsed.port or 443)
        except OSError:
            return None
        addresses = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
    refused = [(a, v) for a in addresses if (v := check_address(a, name, allow)).blocked]
    if refused and len(refused) == len(addresses):
        return f"destination '{parsed.host}' is blocked: " + "; ".join(f"{a} is {v.reason}" for a, v in refused)
    return None
