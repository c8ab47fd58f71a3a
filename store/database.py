"""The service database: projects, keys, flow revisions, idempotency keys, webhook secrets and signatures.

SQLite by default (``.flowtide/flowtide.db``), PostgreSQL with ``FLOWTIDE_DATABASE_URL=postgresql://...``
(psycopg 3). Every method is synchronous and short; the ASGI app calls them through ``asyncio.to_thread``.
The schema is versioned with Alembic (``migrations/``); ``migrate()`` brings any database to the newest one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from flowtide.store.schema import (
    api_keys,
    flow_revisions,
    hook_secrets,
    idempotency_keys,
    projects,
    webhook_signatures,
)

DEFAULT_DB = ".flowtide/flowtide.db"
ROLES = ("read", "run", "admin")
KEY_PREFIX = "ftk_"
IDEMPOTENCY_TTL = timedelta(hours=24)
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # also safe inside a visibility query
_MIGRATION_LOCK = 7_303_110  # pg_advisory_lock id: replicas starting together migrate one at a time
_ALEMBIC = threading.Lock()  # alembic keeps its context in module globals: one migration per process at a time


class StoreError(ValueError):
    """A refused admin action (unknown project, duplicate id, ...), shown as one line."""


def database_url(url: str | None = None) -> str:
    """The SQLAlchemy URL: ``url``, else ``FLOWTIDE_DATABASE_URL``, else SQLite at ``.flowtide/flowtide.db``."""
    url = url or os.environ.get("FLOWTIDE_DATABASE_URL") or ""
    if not url:
        Path(DEFAULT_DB).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DEFAULT_DB}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):  # psycopg 3 is the driver the postgres extra installs
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def hash_key(key: str) -> str:
    """sha256 hex of an API key: keys are 256-bit random, so a fast hash is enough to make a leak useless."""
    return hashlib.sha256(key.encode()).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def canonical(document: Any) -> str:
    """A flow document as canonical JSON (sorted keys, no spacing): two deploys of one document compare equal."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone: they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Store:
    """One database; safe to share between threads (SQLAlchemy's pool)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        args: dict[str, Any] = {"timeout": 30, "check_same_thread": False} if self.url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(self.url, connect_args=args, pool_pre_ping=True)

    def migrate(self) -> None:
        """Apply every migration not applied yet (safe with several processes on one PostgreSQL database)."""
        from alembic import command
        from alembic.config import Config
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with _ALEMBIC, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any failure means "not reachable" for /healthz
            return False

    # ---- projects and keys ---------------------------------------------------------------------
    def create_project(self, project_id: str) -> None:
        if not PROJECT_ID.match(project_id):
            raise StoreError(f"project id '{project_id}': 1-64 letters, digits, '_', '.', '-' "
                             "(first a letter or digit)")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(projects).values(id=project_id, created_at=now()))
        except IntegrityError:
            raise StoreError(f"project '{project_id}' exists already") from None

    def list_projects(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(projects).order_by(projects.c.id)).mappings().all()
        return [{"id": r["id"], "createdAt": utc(r["created_at"]).isoformat()} for r in rows]

    def project_exists(self, project_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is not None

    def create_key(self, project_id: str, role: str = "run", name: str | None = None) -> tuple[str, str]:
        """A new key for ``project_id``: ``(key id, key)``; the key is returned here once and never stored."""
        if role not in ROLES:
            raise StoreError(f"role '{role}': one of {', '.join(ROLES)}")
        if not self.project_exists(project_id):
            raise StoreError(f"no project '{project_id}' (flowtide projects create {project_id})")
        key_id, key = "key_" + secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys).values(id=key_id, project_id=project_id, name=name or key_id, role=role,
                                                 key_hash=hash_key(key), created_at=now()))
        return key_id, key

    def list_keys(self, project_id: str | None = None) -> list[dict[str, Any]]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if project_id:
            query = query.where(api_keys.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{"id": r["id"], "project": r["project_id"], "name": r["name"], "role": r["role"],
                 "createdAt": utc(r["created_at"]).isoformat(),
                 "revokedAt": utc(r["revoked_at"]).isoformat() if r["revoked_at"] else None} for r in rows]

    def revoke_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                                .values(revoked_at=now())).rowcount
        if not done:
            raise StoreError(f"no active key '{key_id}'")

    def key_by_hash(self, digest: str) -> dict[str, Any] | None:
        """The active key with this hash (revoked keys are not found)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest,
                                                      api_keys.c.revoked_at.is_(None))).mappings().first()
        return dict(row) if row else None

    # ---- flow revisions ------------------------------------------------------------------------
    def deploy(self, project_id: str, flow_id: str, document: Any, title: str | None,
               key_name: str | None = None) -> dict[str, Any]:
        """Store ``document`` as the next revision of the flow (1, 2, 3, ...); retried when two deploys race.

        A document equal to the deployed revision's (compared as canonical JSON: key order and spacing do not
        count) stores nothing: the answer is that revision, with ``"unchanged": True``.
        """
        for _ in range(10):
            try:
                with self.engine.begin() as conn:
                    top = conn.execute(select(flow_revisions.c.revision, flow_revisions.c.document,
                                              flow_revisions.c.deployed_at).where(
                        flow_revisions.c.project_id == project_id, flow_revisions.c.flow_id == flow_id
                    ).order_by(flow_revisions.c.revision.desc()).limit(1)).mappings().first()
                    if top is not None and canonical(json.loads(top["document"])) == canonical(document):
                        return {"flowId": flow_id, "revision": top["revision"],
                                "deployedAt": utc(top["deployed_at"]).isoformat(), "unchanged": True}
                    rev, at = int(top["revision"] if top else 0) + 1, now()
                    conn.execute(insert(flow_revisions).values(
                        project_id=project_id, flow_id=flow_id, revision=rev, document=json.dumps(document),
                        title=(title or "")[:500] or None, deployed_at=at, key_name=key_name))
                return {"flowId": flow_id, "revision": rev, "deployedAt": at.isoformat(), "unchanged": False}
            except IntegrityError:
                continue  # another deploy took this number: take the next one
        raise StoreError(f"could not deploy flow '{flow_id}': too many concurrent deploys")

    def revision(self, project_id: str, flow_id: str, revision: int | None = None) -> dict[str, Any] | None:
        """One revision (default: the deployed one, the newest) with its ``document``, or None."""
        q = select(flow_revisions).where(flow_revisions.c.project_id == project_id,
                                         flow_revisions.c.flow_id == flow_id)
        q = q.where(flow_revisions.c.revision == revision) if revision is not None \
            else q.order_by(flow_revisions.c.revision.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            return None
        return {"flowId": flow_id, "revision": row["revision"], "deployedAt": utc(row["deployed_at"]).isoformat(),
                "document": json.loads(row["document"]), "title": row["title"]}

    def revisions(self, project_id: str, flow_id: str) -> list[dict[str, Any]]:
        """The flow's revisions, newest first."""
        q = select(flow_revisions.c.revision, flow_revisions.c.deployed_at, flow_revisions.c.key_name).where(
            flow_revisions.c.project_id == project_id, flow_revisions.c.flow_id == flow_id
        ).order_by(flow_revisions.c.revision.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{"revision": r["revision"], "deployedAt": utc(r["deployed_at"]).isoformat(),
                 "keyName": r["key_name"]} for r in rows]

    def flows(self, project_id: str) -> list[dict[str, Any]]:
        """The project's flows, each with its deployed (newest) revision."""
        top = select(flow_revisions.c.flow_id, func.max(flow_revisions.c.revision).label("rev")).where(
            flow_revisions.c.project_id == project_id).group_by(flow_revisions.c.flow_id).subquery()
        q = select(flow_revisions).join(top, (flow_revisions.c.flow_id == top.c.flow_id)
                                        & (flow_revisions.c.revision == top.c.rev)).where(
            flow_revisions.c.project_id == project_id).order_by(flow_revisions.c.flow_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{"flowId": r["flow_id"], "revision": r["revision"], "deployedAt": utc(r["deployed_at"]).isoformat(),
                 "title": r["title"]} for r in rows]

    # ---- idempotency and webhook secrets -------------------------------------------------------
    def claim_idempotency(self, project_id: str, key: str, body_hash: str, workflow_id: str) -> tuple[str, str]:
        """The ``(workflow id, body hash)`` that owns ``key``: ours when we were first (or the old claim expired)."""
        for _ in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(idempotency_keys).values(project_id=project_id, key=key, body_hash=body_hash,
                                                                 workflow_id=workflow_id, created_at=now()))
                return workflow_id, body_hash
            except IntegrityError:
                pass  # someone holds it: read theirs
            with self.engine.begin() as conn:
                where = (idempotency_keys.c.project_id == project_id) & (idempotency_keys.c.key == key)
                row = conn.execute(select(idempotency_keys).where(where)).mappings().first()
                if row is None:
                    continue
                if utc(row["created_at"]) > now() - IDEMPOTENCY_TTL:
                    return str(row["workflow_id"]), str(row["body_hash"])
                conn.execute(delete(idempotency_keys).where(where, idempotency_keys.c.created_at == row["created_at"]))
        raise StoreError("could not claim the idempotency key")

    def set_hook_secret(self, project_id: str, flow_id: str) -> str:
        """Create or rotate the flow's webhook secret; return it (shown once)."""
        if not self.project_exists(project_id):
            raise StoreError(f"no project '{project_id}'")
        secret = "whsec_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(delete(hook_secrets).where(hook_secrets.c.project_id == project_id,
                                                    hook_secrets.c.flow_id == flow_id))
            conn.execute(insert(hook_secrets).values(project_id=project_id, flow_id=flow_id, secret=secret,
                                                     created_at=now()))
        return secret

    def hook_secret(self, project_id: str, flow_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(hook_secrets.c.secret).where(
                hook_secrets.c.project_id == project_id, hook_secrets.c.flow_id == flow_id)).scalar()

    def claim_signature(self, hook: str, digest: str, expires_at: datetime) -> bool:
        """Record a webhook signature as used; False when it was used already (by any replica).

        The insert is the check: the primary key makes exactly one of two concurrent claims succeed, on
        SQLite and PostgreSQL alike. Expired rows are purged on the way (their timestamps are refused anyway).
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(webhook_signatures).values(hook=hook, digest=digest, expires_at=expires_at))
        except IntegrityError:
            return False
        with self.engine.begin() as conn:
            conn.execute(delete(webhook_signatures).where(webhook_signatures.c.expires_at < now()))
        return True

    def release_signature(self, hook: str, digest: str) -> None:
        """Forget a claimed signature whose request started nothing, so the sender may retry it."""
        with self.engine.begin() as conn:
            conn.execute(delete(webhook_signatures).where(webhook_signatures.c.hook == hook,
                                                          webhook_signatures.c.digest == digest))
