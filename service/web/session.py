"""Browser sessions: a random session id in an HttpOnly, SameSite=Strict cookie; the database keeps its hash
and the id of the key it signed in with (never the key), so every replica of the service knows it.

Room is made per key: a key's own oldest session goes when it signs in once too often; when the whole table
is full of live sessions a new sign-in is refused (429), never another key's session evicted. Sign-in itself
is rate limited per client address and per key (``SignInLimits``), and its form carries a token bound to a
cookie set with the form (``signin_token``), so a page elsewhere cannot post it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass

from flowtide.service.auth import RateLimiter
from flowtide.service.errors import ApiError
from flowtide.store.database import Store
from flowtide.store.replicas import SessionsFull, create_session, drop_session, session, shared_secret

COOKIE = "flowtide_session"
SIGNIN_COOKIE = "flowtide_signin"  # the sign-in form's nonce (double submit: the form holds its HMAC)
TTL_S = 8 * 3600
MAX_SESSIONS = 10_000  # live sessions of all keys, on all replicas
MAX_SESSIONS_PER_KEY = 20  # one key's browsers; its oldest session goes first
SIGNIN_PER_ADDRESS = (10 / 60, 10)  # failed sign-ins (rate per second, burst) from one client address
SIGNIN_PER_KEY = (5 / 60, 5)  # sign-in attempts with one key, from anywhere


@dataclass(frozen=True)
class Session:
    """One signed-in browser: its id, the key it signed in with (id, name, project, role) and its CSRF token."""

    sid: str
    key_id: str
    key_name: str
    project: str
    role: str
    csrf: str


class Sessions:
    """Session id -> session, in the service database: every replica sees every session (no sticky sessions).

    A row keeps the hash of the session id and the id of the key, never the key or the id itself: the key was
    checked at sign-in and its row is read again on every request (a revoked key signs its sessions out).
    """

    def __init__(self, store: Store, ttl_s: float = TTL_S, max_sessions: int = MAX_SESSIONS,
                 per_key: int = MAX_SESSIONS_PER_KEY) -> None:
        self.store, self.ttl_s = store, ttl_s
        self.max_sessions, self.per_key = max_sessions, per_key
        self._form_key: bytes | None = None  # the shared secret, once read (it never changes)

    async def create(self, key_id: str) -> str:
        """A new session for the key ``key_id``; returns its id (the cookie's value).

        Raises:
            ApiError: ``RATE_LIMITED`` (429) when the table is full of other keys' live sessions.
        """
        try:
            return await asyncio.to_thread(create_session, self.store, key_id, self.ttl_s, self.max_sessions,
                                           self.per_key)
        except SessionsFull:
            raise ApiError("RATE_LIMITED", "this server has as many signed-in browsers as it keeps; sign in "
                           "again later (or sign out elsewhere)", headers={"Retry-After": "60"}) from None

    async def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid`` whose key still works, or None."""
        if not sid:
            return None
        row = await asyncio.to_thread(session, self.store, sid)
        return None if row is None else Session(sid=sid, key_id=row.key_id, key_name=row.key_name,
                                                project=row.project, role=row.role, csrf=row.csrf)

    async def drop(self, sid: str | None) -> None:
        """Forget session ``sid`` (signed out)."""
        if sid:
            await asyncio.to_thread(drop_session, self.store, sid)

    async def signin_token(self, nonce: str) -> str:
        """The sign-in form's token for the nonce in its cookie (keyed alike on every replica)."""
        if self._form_key is None:
            self._form_key = await asyncio.to_thread(shared_secret, self.store, "signin-form")
        return hmac.new(self._form_key, nonce.encode(), hashlib.sha256).hexdigest()


class SignInLimits:
    """How often sign-in may be tried: with one key (every attempt), and from one client address (failed
    attempts only); token buckets in the database, shared by every replica like the API's.

    Only failures count against an address: every browser behind one proxy or NAT shares its address, and one
    caller sending wrong keys must not lock the others out. A correct key signs in whatever its address did.
    """

    def __init__(self, store: Store) -> None:
        self.by_address = RateLimiter(store, *SIGNIN_PER_ADDRESS, name="signin-address")
        self.by_key = RateLimiter(store, *SIGNIN_PER_KEY, name="signin-key")

    async def take(self, key: str) -> None:
        """Spend one attempt of ``key`` (before it is checked).

        Raises:
            ApiError: ``RATE_LIMITED`` with ``Retry-After``.
        """
        await self._spend(self.by_key, hashlib.sha256(key.encode()).hexdigest())

    async def failed(self, address: str) -> None:
        """Spend one failed attempt of ``address`` (a key that is not one).

        Raises:
            ApiError: ``RATE_LIMITED`` with ``Retry-After`` once the address has no failures left.
        """
        await self._spend(self.by_address, address)

    @staticmethod
    async def _spend(bucket: RateLimiter, name: str) -> None:
        try:
            await bucket.take(name)
        except ApiError as err:
            wait = err.headers.get("Retry-After", "60")
            raise ApiError("RATE_LIMITED", f"too many sign-in attempts from this address or with this key; try "
                           f"again in {wait} s", headers={"Retry-After": wait}) from None
