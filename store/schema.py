"""The service's tables (SQLAlchemy Core); the migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

projects = Table(
    "projects", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key; the key itself is never kept
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

flow_revisions = Table(
    "flow_revisions", metadata,
    Column("project_id", String(64), ForeignKey("projects.id"), primary_key=True),
    Column("flow_id", String(200), primary_key=True),
    Column("revision", Integer, primary_key=True),  # the primary key makes two concurrent deploys of N+1 collide
    Column("document", Text, nullable=False),  # JSON of the document as deployed
    Column("title", String(500)),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
    Column("key_name", String(200)),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("project_id", String(64), ForeignKey("projects.id"), primary_key=True),
    Column("key", String(255), primary_key=True),  # unique: concurrent identical requests share one row, one run
    Column("body_hash", String(64), nullable=False),
    Column("workflow_id", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

hook_secrets = Table(
    "hook_secrets", metadata,
    Column("project_id", String(64), ForeignKey("projects.id"), primary_key=True),
    Column("flow_id", String(200), primary_key=True),
    Column("secret", String(200), nullable=False),  # HMAC needs the secret itself, not a hash
    Column("created_at", DateTime(timezone=True), nullable=False),
)

connections = Table(
    "connections", metadata,
    Column("name", String(100), primary_key=True),
    # "" = database-wide (the operator's, made with the CLI); else the project that made it through the API:
    # one namespace per project, and a project's row shadows the database-wide one of that name for its runs
    Column("project_id", String(64), primary_key=True, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("config", Text, nullable=False),  # JSON of the non-secret settings (token URL, client id, header name...)
    Column("secret", Text, nullable=False),  # AES-GCM sealed JSON of every credential value (see secretbox)
    Column("state", String(8), nullable=False),  # ok | error (the refresh was refused: reconnect)
    Column("reason", Text),
    Column("expires_at", DateTime(timezone=True)),  # the oauth2 access token's expiry
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("state_at", DateTime(timezone=True), nullable=False),
)

webhook_signatures = Table(
    "webhook_signatures", metadata,
    # the primary key is the unique constraint: of two replicas inserting one signature, exactly one succeeds
    Column("hook", String(300), primary_key=True),  # "<project>/<flow id>"
    Column("digest", String(64), primary_key=True),  # sha256 hex of "<t>.<v1>": the signature, not the secret
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),  # t + the accepted clock skew
)

# ---- state every replica of the service (and every worker) shares through the database (migration 0005) ----
web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 hex of the session id (the cookie); never the id
    Column("key_id", String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),  # the session's form token (the page shows it; it signs nothing)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

rate_buckets = Table(
    "rate_buckets", metadata,
    Column("bucket", String(120), primary_key=True),  # "<limit>:<key id | address | key hash>"
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False, index=True),  # epoch seconds: the refill is computed in SQL
)

cancel_watches = Table(
    "cancel_watches", metadata,
    # a cancelled run to terminate if its workflow task keeps failing; any replica may claim it
    Column("workflow_id", String(300), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),  # the end of the cancel's grace period
    Column("claimed_until", DateTime(timezone=True), nullable=False, index=True),  # a replica's lease
)

breaker_states = Table(
    "breakers", metadata,
    # the columns of the per-machine SQLite file's table (store/breakers.py), for workers on several machines
    Column("key", String(400), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Text, nullable=False),
    Column("open_until", Float, nullable=False, server_default="0"),
    Column("trial_until", Float, nullable=False, server_default="0"),
    Column("opened", Integer, nullable=False, server_default="0"),
    Column("config", Text, nullable=False, server_default="{}"),
    Column("updated", Float, nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),  # each write: +1 (compare-and-set)
)

service_secrets = Table(
    "service_secrets", metadata,
    # secrets the replicas must agree on (the sign-in form's token key), made by the first one that needs it
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)
