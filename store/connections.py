"""Connections in the service database: add, reconnect, remove, list, read for a worker, and their state.

A connection's non-secret settings are kept as JSON; its credential values (token, password, API key value,
client secret, refresh and access tokens) are sealed together with ``FLOWTIDE_SECRET_KEY`` (``secretbox``).
Names form one namespace per owner: the operator's (the CLI: database-wide, usable by every project) and
each project's (made through the API); a project's connection of a name shadows the database-wide one.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection as SqlConnection
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowtide.store.connection_checks import check_fields, normal_origin
from flowtide.store.connection_kinds import AUTH_SCHEMES, FIELDS, LIST_FIELDS, SECRET_FIELDS
from flowtide.store.database import Store, StoreError, now, utc
from flowtide.store.schema import connections
from flowtide.store.secretbox import seal, unseal

DATABASE_WIDE = ""  # the owner of the operator's connections (added with the CLI), which every project may use
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


@dataclass
class Conn:
    """One connection as a worker uses it: settings and the opened secret values."""

    name: str
    kind: str
    config: dict[str, Any]
    secret: dict[str, Any]
    state: str = "ok"
    reason: str | None = None
    expires_at: datetime | None = None
    project: str = DATABASE_WIDE  # the row's owner: a project, or "" (database-wide)

    def secret_values(self) -> list[str]:
        """Every credential value, for redaction."""
        return [str(v) for v in self.secret.values() if isinstance(v, str) and v]


def check_name(name: str) -> None:
    """Raises StoreError for a name that is not 1-100 letters, digits, '_', '.', '-' (first a letter)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise StoreError(f"connection name {name!r}: 1-100 letters, digits, '_', '.', '-', first a letter")


def split_values(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, secret)`` of a complete set of ``values`` for ``kind``; StoreError names what is wrong."""
    if kind not in FIELDS:
        raise StoreError(f"connection kind {kind!r}: one of {', '.join(AUTH_SCHEMES)}")
    required, optional = FIELDS[kind]
    missing = [f for f in required if not values.get(f)]
    if missing:
        raise StoreError(f"a {kind} connection needs {', '.join(missing)}")
    unknown = sorted(k for k, v in values.items() if v is not None and k not in required + optional)
    if unknown:
        raise StoreError(f"a {kind} connection has no {', '.join(unknown)}")
    for key in LIST_FIELDS:
        if isinstance(values.get(key), str):
            values = dict(values, **{key: values[key].replace(",", " ").split()})
    wrong = [k for k, v in values.items() if v is not None and not (
        isinstance(v, str) or (k in LIST_FIELDS and isinstance(v, list) and all(isinstance(s, str) for s in v)))]
    if wrong:
        raise StoreError(f"{', '.join(sorted(wrong))}: must be a string (scopes, origins: a list of strings)")
    check_fields(values)
    config: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key in required + optional:
        if values.get(key) is not None:
            (secret if key in SECRET_FIELDS else config)[key] = values[key]
    if kind == "oauth2":
        config["grant"] = "refresh_token" if secret.get("refreshToken") else "client_credentials"
        config["scopes"] = [str(s) for s in config.get("scopes") or []]
    if config.get("origins"):
        config["origins"] = [normal_origin(o) for o in config["origins"]]
    return config, secret


def _public(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "kind": row["kind"], "state": row["state"], "reason": row["reason"],
            "project": row["project_id"] or None, "config": json.loads(row["config"]),
            "updatedAt": utc(row["updated_at"]).isoformat(), "stateAt": utc(row["state_at"]).isoformat(),
            "tokenExpiresAt": utc(row["expires_at"]).isoformat() if row["expires_at"] else None}


def _own(query: Any, name: str, owner: str) -> Any:
    """``query`` narrowed to the one row ``owner`` (a project, or "" for database-wide) holds as ``name``."""
    return query.where(connections.c.name == name, connections.c.project_id == owner)


def _visible(query: Any, owner: str) -> Any:
    # a project reads its own rows and the database-wide ones, its own first (they shadow them); never another
    # project's. "" (the operator, a run without a project) reads the database-wide ones only.
    return query.where(connections.c.project_id.in_({owner, DATABASE_WIDE})).order_by(
        connections.c.project_id.desc())


class Connections:
    """The connections of one service database, as ``project`` sees them.

    Writes (add, reconnect, remove, a token, an error state) touch only the row ``project`` owns; reads
    resolve a name to the project's own row, else the database-wide one. ``project`` None is the operator
    (the CLI): writes and reads address the database-wide rows, and ``list`` shows every row.
    """

    def __init__(self, store: Store, project: str | None = None) -> None:
        self.store = store
        self.project = project

    def _owner(self, project: str | None) -> str:
        return (self.project if project is None else project) or DATABASE_WIDE

    def add(self, name: str, kind: str, values: dict[str, Any], project: str | None = None) -> dict[str, Any]:
        """Create a connection (state ``ok``); StoreError when the name is taken or the values are incomplete."""
        check_name(name)
        config, secret = split_values(kind, values)
        owner, at = self._owner(project), now()
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(connections).values(
                    name=name, project_id=owner, kind=kind, config=json.dumps(config), secret=seal(name, secret),
                    state="ok", reason=None, expires_at=None, created_at=at, updated_at=at, state_at=at))
        except IntegrityError:
            raise StoreError(f"connection '{name}' exists already (flowtide connections reconnect {name})") from None
        return self.show(name, owner) or {}

    def reconnect(self, name: str, values: dict[str, Any], kind: str | None = None,
                  project: str | None = None) -> dict[str, Any]:
        """New credentials over the old ones (flags not given are kept); back to state ``ok``, token dropped."""
        owner = self._owner(project)
        old = self.owned(name, owner)
        if old is None:
            raise StoreError(f"no connection '{name}'")
        kind = kind or old.kind
        merged = {**old.config, **old.secret} if kind == old.kind else {}
        merged.pop("grant", None)
        merged.pop("accessToken", None)
        merged.update({k: v for k, v in values.items() if v is not None})
        config, secret = split_values(kind, merged)
        at = now()
        with self.store.engine.begin() as conn:
            conn.execute(_own(update(connections), name, owner).values(
                kind=kind, config=json.dumps(config), secret=seal(name, secret), state="ok", reason=None,
                expires_at=None, updated_at=at, state_at=at))
        return self.show(name, owner) or {}

    def remove(self, name: str, project: str | None = None) -> None:
        """Delete the connection ``project`` owns; StoreError when it owns none of that name."""
        with self.store.engine.begin() as conn:
            done = conn.execute(_own(delete(connections), name, self._owner(project))).rowcount
        if not done:
            raise StoreError(f"no connection '{name}'")

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        """Every connection ``project`` can use (the operator: every row), without secrets, by name."""
        everything = project is None and self.project is None
        query: Any = select(connections)
        if not everything:
            query = _visible(query, self._owner(project))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if not everything:  # a project's own row hides the database-wide one of that name
            rows = list({r["name"]: r for r in reversed(rows)}.values())
        return [_public(r) for r in sorted(rows, key=lambda r: (r["name"], r["project_id"]))]

    def show(self, name: str, project: str | None = None) -> dict[str, Any] | None:
        """One connection without its secrets (the one ``project`` would use), or None."""
        with self.store.engine.connect() as conn:
            row = conn.execute(_visible(select(connections).where(connections.c.name == name),
                                        self._owner(project))).mappings().first()
        return _public(row) if row else None

    def owned(self, name: str, project: str | None = None) -> Conn | None:
        """The connection ``project`` itself owns as ``name`` (never the database-wide one it may use), or None."""
        return self._conn(_own(select(connections), name, self._owner(project)), None)

    def get(self, name: str, project: str | None = None, *, conn: SqlConnection | None = None,
            for_update: bool = False) -> Conn | None:
        """The connection ``project`` uses as ``name``, with its opened secret, or None; ``for_update``
        row-locks it on PostgreSQL."""
        query = _visible(select(connections).where(connections.c.name == name), self._owner(project))
        if for_update and self.store.engine.dialect.name == "postgresql":
            query = query.limit(1).with_for_update()
        return self._conn(query, conn)

    def _conn(self, query: Any, conn: SqlConnection | None) -> Conn | None:
        if conn is None:
            with self.store.engine.connect() as own:
                row = own.execute(query).mappings().first()
        else:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return Conn(name=row["name"], kind=row["kind"], config=json.loads(row["config"]),
                    secret=unseal(row["name"], row["secret"]), state=row["state"], reason=row["reason"],
                    expires_at=utc(row["expires_at"]) if row["expires_at"] else None, project=row["project_id"])

    def save_token(self, conn: SqlConnection, c: Conn, expires_at: datetime | None) -> None:
        """Store ``c.secret`` (with its new access token) and the expiry, inside the caller's transaction."""
        conn.execute(_own(update(connections), c.name, c.project).values(
            secret=seal(c.name, c.secret), expires_at=expires_at, updated_at=now()))

    def mark_error(self, name: str, reason: str, conn: SqlConnection | None = None) -> None:
        """Move the connection this view uses as ``name`` to state ``error`` with ``reason`` (reauthorize)."""
        at = now()
        with contextlib.nullcontext(conn) if conn is not None else self.store.engine.begin() as db:
            used = self.get(name, conn=db)
            if used is not None:
                db.execute(_own(update(connections), name, used.project).values(
                    state="error", reason=reason[:2000], updated_at=at, state_at=at))


def connection_states(store: Store | None = None, project: str | None = None) -> list[dict[str, Any]]:
    """Name, kind, state, reason and times of every connection ``project`` can use (the runs page shows those
    in ``error`` as a reauthorization alert)."""
    return [{k: c.get(k) for k in ("name", "kind", "state", "reason", "stateAt", "updatedAt", "project")}
            for c in Connections(store or Store()).list(project)]
