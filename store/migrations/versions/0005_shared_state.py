"""State the replicas share: page sessions, rate-limit buckets, cancel watches, circuit breakers, service secrets.

Before this, sessions, rate limits and cancel watches lived in each ``flowtide serve`` process and breakers
in a SQLite file per machine; with these tables every replica (and every worker) on one database sees the same.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("web_sessions",
                    sa.Column("id_hash", sa.String(64), primary_key=True),
                    sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                              nullable=False),
                    sa.Column("csrf", sa.String(64), nullable=False),
                    sa.Column("created_at", _TS, nullable=False), sa.Column("expires_at", _TS, nullable=False))
    op.create_index("ix_web_sessions_key_id", "web_sessions", ["key_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table("rate_buckets",
                    sa.Column("bucket", sa.String(120), primary_key=True),
                    sa.Column("tokens", sa.Float, nullable=False), sa.Column("updated", sa.Float, nullable=False))
    op.create_index("ix_rate_buckets_updated", "rate_buckets", ["updated"])
    op.create_table("cancel_watches",
                    sa.Column("workflow_id", sa.String(300), primary_key=True),
                    sa.Column("run_id", sa.String(64), nullable=False),
                    sa.Column("due_at", _TS, nullable=False), sa.Column("claimed_until", _TS, nullable=False))
    op.create_index("ix_cancel_watches_claimed_until", "cancel_watches", ["claimed_until"])
    op.create_table("breakers",
                    sa.Column("key", sa.String(400), primary_key=True),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("failures", sa.Text, nullable=False),
                    sa.Column("open_until", sa.Float, nullable=False, server_default="0"),
                    sa.Column("trial_until", sa.Float, nullable=False, server_default="0"),
                    sa.Column("opened", sa.Integer, nullable=False, server_default="0"),
                    sa.Column("config", sa.Text, nullable=False, server_default="{}"),
                    sa.Column("updated", sa.Float, nullable=False),
                    sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    op.create_table("service_secrets",
                    sa.Column("name", sa.String(64), primary_key=True),
                    sa.Column("value", sa.String(200), nullable=False))


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_table("breakers")
    op.drop_index("ix_cancel_watches_claimed_until", "cancel_watches")
    op.drop_table("cancel_watches")
    op.drop_index("ix_rate_buckets_updated", "rate_buckets")
    op.drop_table("rate_buckets")
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_index("ix_web_sessions_key_id", "web_sessions")
    op.drop_table("web_sessions")
