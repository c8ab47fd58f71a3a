"""Which headers a flow may put in its webhook answer (``core.return``'s ``webhookResponse.headers``).

One rule, used when the flow is validated and again by the service when it answers (a templated value is
only known then). A name must be an RFC 9110 token; a value must hold no CR, LF or NUL. Refused: hop-by-hop
and framing headers (the server sets them) and every header that would speak for the service's own origin:
cookies, security policies, CORS, redirects (``Location``, ``Refresh``: a webhook answer is data for the
caller, and a redirect on the service's origin is an open redirect).
"""

from __future__ import annotations

import re
from typing import Any

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FORBIDDEN = frozenset({
    # hop-by-hop and framing
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host",
    # the service's own origin
    "set-cookie", "set-cookie2", "content-security-policy", "content-security-policy-report-only",
    "strict-transport-security", "x-frame-options", "permissions-policy", "referrer-policy",
    "x-content-type-options", "clear-site-data", "refresh", "location", "www-authenticate", "alt-svc",
})
FORBIDDEN_PREFIXES = ("proxy-", "access-control-", "cross-origin-")


def webhook_header_problem(name: Any, value: Any) -> str | None:
    """Why the header ``name: value`` may not be in a webhook answer, or ``None`` when it may."""
    if not isinstance(name, str) or not TOKEN.fullmatch(name):
        return f"{str(name)[:60]!r} is not a valid header name (an RFC 9110 token)"
    low = name.lower()
    if low in FORBIDDEN or low.startswith(FORBIDDEN_PREFIXES):
        return (f"header '{name}' cannot be set by a flow: hop-by-hop, framing, cookie, security, CORS and "
                "redirect headers belong to the service")
    if isinstance(value, dict | list):
        return f"header '{name}' must be a text value"
    if any(c in str(value) for c in "\r\n\x00"):
        return f"header '{name}' has a forbidden character in its value (CR, LF or NUL)"
    if any(ord(c) > 255 or (ord(c) < 32 and c != "\t") or ord(c) == 127 for c in str(value)):
        return f"header '{name}' must be printable Latin-1 text (HTTP header values are bytes)"
    return None
