"""Initial schema: projects, API keys, flow revisions, idempotency keys, webhook secrets."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("projects", sa.Column("id", sa.String(64), primary_key=True),
                    sa.Column("created_at", _TS, nullable=False))
    op.create_table("api_keys", sa.Column("id", sa.String(32), primary_key=True),
                    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
                    sa.Column("name", sa.String(200), nullable=False), sa.Column("role", sa.String(16), nullable=False),
                    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("created_at", _TS, nullable=False), sa.Column("revoked_at", _TS))
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])
    op.create_table("flow_revisions",
                    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
                    sa.Column("flow_id", sa.String(200), primary_key=True),
                    sa.Column("revision", sa.Integer, primary_key=True),
                    sa.Column("document", sa.Text, nullable=False), sa.Column("title", sa.String(500)),
                    sa.Column("deployed_at", _TS, nullable=False), sa.Column("key_name", sa.String(200)))
    op.create_table("idempotency_keys",
                    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
                    sa.Column("key", sa.String(255), primary_key=True),
                    sa.Column("body_hash", sa.String(64), nullable=False),
                    sa.Column("workflow_id", sa.String(300), nullable=False),
                    sa.Column("created_at", _TS, nullable=False))
    op.create_table("hook_secrets",
                    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
                    sa.Column("flow_id", sa.String(200), primary_key=True),
                    sa.Column("secret", sa.String(200), nullable=False),
                    sa.Column("created_at", _TS, nullable=False))


def downgrade() -> None:
    for table in ("hook_secrets", "idempotency_keys", "flow_revisions", "api_keys", "projects"):
        op.drop_table(table)
