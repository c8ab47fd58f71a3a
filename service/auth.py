"""Who is calling: ``Authorization: Bearer ftk_...`` + ``x-project-id``, the key's role, and its rate limit."""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass

from starlette.requests import Request

from flowtide.service.errors import ApiError
from flowtide.store.database import KEY_PREFIX, ROLES, Store, hash_key
from flowtide.store.replicas import spend


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's id, name, project and role (never the key itself)."""

    key_id: str
    key_name: str
    project: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class RateLimiter:
    """A token bucket per key (``FLOWTIDE_API_RATE`` per second, burst 2x), kept in the database: every replica
    of the service spends from the same bucket (``store.replicas.spend``), so N replicas grant one limit."""

    def __init__(self, store: Store, rate: float | None = None, burst: float | None = None,
                 name: str = "api") -> None:
        self.store, self.name = store, name
        self.rate = rate if rate is not None else float(os.environ.get("FLOWTIDE_API_RATE", "20"))
        self.burst = burst if burst is not None else max(1.0, self.rate * 2)

    async def take(self, key_id: str, n: int = 1) -> None:
        """Spend ``n`` tokens of ``key_id``'s bucket, all or none (a GraphQL request's fields count one each).

        Raises:
            ApiError: ``RATE_LIMITED`` with ``Retry-After`` (whole seconds until ``n`` tokens are back).
        """
        bucket = f"{self.name}:{key_id}"
        if len(bucket) > 120:  # a webhook's "hook:<project>/<flow id>" may be long: its hash, never a cut
            bucket = f"{self.name}:{hash_key(key_id)}"
        short = await asyncio.to_thread(spend, self.store, bucket, n, self.rate, self.burst)
        if short <= 0:
            return
        wait = max(1, math.ceil((n - short) / self.rate)) if self.rate > 0 else 60
        what = "too many requests" if n == 1 else f"too many calls ({n} more in this request)"
        raise ApiError("RATE_LIMITED", f"{what} for this key (limit {self.rate:g}/s, burst "
                       f"{self.burst:g}); retry after {wait} s", headers={"Retry-After": str(wait)})


def bearer(request: Request) -> str:
    """The key of ``Authorization: Bearer <key>``.

    Raises:
        ApiError: ``UNAUTHENTICATED`` when the header is missing or malformed.
    """
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise ApiError("UNAUTHENTICATED", "missing API key: send Authorization: Bearer <key>")
    if scheme.lower() != "bearer" or not key.strip().startswith(KEY_PREFIX):
        raise ApiError("UNAUTHENTICATED", "malformed Authorization header: expected Bearer ftk_...")
    return key.strip()


async def key_principal(store: Store, key: str) -> Principal:
    """The principal of an active key.

    Raises:
        ApiError: ``UNAUTHENTICATED`` for an unknown or revoked key.
    """
    row = await asyncio.to_thread(store.key_by_hash, hash_key(key))
    if row is None:
        raise ApiError("UNAUTHENTICATED", "unknown or revoked API key")
    return Principal(key_id=row["id"], key_name=row["name"], project=row["project_id"], role=row["role"])


def check_access(who: Principal, project: str | None, role: str) -> None:
    """The key may act on ``project`` with ``role``.

    Raises:
        ApiError: ``BAD_REQUEST`` without ``x-project-id``; ``FORBIDDEN`` for another project or a weaker role.
    """
    if not project:
        raise ApiError("BAD_REQUEST", "missing x-project-id header (there is no default project)")
    if project != who.project:
        raise ApiError("FORBIDDEN", f"this key does not belong to project '{project}'")
    if not who.allows(role):
        raise ApiError("FORBIDDEN", f"this key's role '{who.role}' does not allow this call (needs '{role}')")


async def authenticate(request: Request, store: Store, limiter: RateLimiter, role: str) -> Principal:
    """Key, project and role of a REST or GraphQL request, after its rate limit (see ``check_access``)."""
    who = await key_principal(store, bearer(request))
    await limiter.take(who.key_id)
    check_access(who, request.headers.get("x-project-id"), role)
    return who
