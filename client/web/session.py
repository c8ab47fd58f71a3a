"""Browser sessions: a random session id in an HttpOnly, SameSite=Strict cookie; the key stays on the server."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

COOKIE = "flowtide_session"
TTL_S = 8 * 3600
MAX_SESSIONS = 10_000


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

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._by_id: dict[str, Session] = {}

    def create(self, key: str) -> str:
        """A new session for ``key``; returns its id (the cookie's value)."""
        if len(self._by_id) >= MAX_SESSIONS:
            self._expire()
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

    def _expire(self) -> None:
        t = time.time()
        for sid in [s for s, v in self._by_id.items() if v.expires < t]:
            del self._by_id[sid]
        while len(self._by_id) >= MAX_SESSIONS:  # still full of live sessions: the oldest go first
            del self._by_id[next(iter(self._by_id))]
