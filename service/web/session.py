"""Browser sessions: a random session id in an HttpOnly, SameSite=Strict cookie; the key stays on the server.

Room is made per key: a key's own oldest session goes when it signs in once too often; when the whole table
is full of live sessions a new sign-in is refused (429), never another key's session evicted. Sign-in itself
is rate limited per client address and per key (``SignInLimits``), and its form carries a token bound to a
cookie set with the form (``signin_token``), so a page elsewhere cannot post it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from flowtide.service.auth import RateLimiter
from flowtide.service.errors import ApiError

COOKIE = "flowtide_session"
SIGNIN_COOKIE = "flowtide_signin"  # the sign-in form's nonce (double submit: the form holds its HMAC)
TTL_S = 8 * 3600
MAX_SESSIONS = 10_000  # live sessions of this process, all keys
MAX_SESSIONS_PER_KEY = 20  # one key's browsers; its oldest session goes first
SIGNIN_PER_ADDRESS = (10 / 60, 10)  # sign-in attempts (rate per second, burst) from one client address
SIGNIN_PER_KEY = (5 / 60, 5)  # sign-in attempts with one key, from anywhere


@dataclass
class Session:
    """One signed-in browser: the key it signed in with and its CSRF token for forms."""

    key: str
    csrf: str
    expires: float


class Sessions:
    """Session id -> session, in this process's memory.

    Why memory and not the database: the key must not be stored anywhere but its hash, and a session is
    cheap to lose (the user signs in again). Several ``serve`` replicas need sticky sessions.
    """

    def __init__(self, ttl_s: float = TTL_S, max_sessions: int = MAX_SESSIONS,
                 per_key: int = MAX_SESSIONS_PER_KEY) -> None:
        self.ttl_s = ttl_s
        self.max_sessions, self.per_key = max_sessions, per_key
        self._by_id: dict[str, Session] = {}
        self._secret = secrets.token_bytes(32)  # signs sign-in form nonces; per process, like the sessions

    def create(self, key: str) -> str:
        """A new session for ``key``; returns its id (the cookie's value).

        Raises:
            ApiError: ``RATE_LIMITED`` (429) when the table is full of other keys' live sessions.
        """
        self._expire()
        own = [sid for sid, s in self._by_id.items() if hmac.compare_digest(s.key, key)]
        excess = len(own) - (self.per_key - 1)  # to stay within its cap with the new one
        if own and len(self._by_id) - max(0, excess) >= self.max_sessions:
            excess = max(excess, 1)  # the table is full: the key may still replace its own oldest
        for sid in own[:max(0, excess)]:  # its oldest first (insertion order)
            del self._by_id[sid]
        if len(self._by_id) >= self.max_sessions:
            raise ApiError("RATE_LIMITED", "this server has as many signed-in browsers as it keeps; sign in "
                           "again later (or sign out elsewhere)", headers={"Retry-After": "60"})
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(key=key, csrf=secrets.token_urlsafe(24), expires=time.time() + self.ttl_s)
        return sid

    def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid``, or None."""
        found = self._by_id.get(sid or "")
        if found is None or found.expires < time.time():
            self._by_id.pop(sid or "", None)
            return None
        return found

    def drop(self, sid: str | None) -> None:
        """Forget session ``sid`` (signed out, or its key stopped working)."""
        self._by_id.pop(sid or "", None)

    def signin_token(self, nonce: str) -> str:
        """The sign-in form's token for the nonce in its cookie."""
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def _expire(self) -> None:
        t = time.time()
        for sid in [s for s, v in self._by_id.items() if v.expires < t]:
            del self._by_id[sid]


class SignInLimits:
    """How often sign-in may be tried: per client address and per key (token buckets of this process).

    The one place that keeps this state: a store shared by replicas (the database) can replace it behind
    ``take``.
    """

    def __init__(self) -> None:
        self.by_address = RateLimiter(*SIGNIN_PER_ADDRESS)
        self.by_key = RateLimiter(*SIGNIN_PER_KEY)

    def take(self, address: str, key: str) -> None:
        """Spend one attempt of ``address`` and of ``key``.

        Raises:
            ApiError: ``RATE_LIMITED`` with ``Retry-After``.
        """
        try:
            self.by_address.take(address)
            self.by_key.take(hashlib.sha256(key.encode()).hexdigest())
        except ApiError as err:
            wait = err.headers.get("Retry-After", "60")
            raise ApiError("RATE_LIMITED", f"too many sign-in attempts from this address or with this key; try "
                           f"again in {wait} s", headers={"Retry-After": wait}) from None
