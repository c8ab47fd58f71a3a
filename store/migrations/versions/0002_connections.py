"""Connections: named credentials (bearer, basic, api-key, oauth2), sealed with FLOWTIDE_SECRET_KEY."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("connections", sa.Column("name", sa.String(100), primary_key=True),
                    sa.Column("project_id", sa.String(64)), sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("config", sa.Text, nullable=False), sa.Column("secret", sa.Text, nullable=False),
                    sa.Column("state", sa.String(8), nullable=False), sa.Column("reason", sa.Text),
                    sa.Column("expires_at", _TS), sa.Column("created_at", _TS, nullable=False),
                    sa.Column("updated_at", _TS, nullable=False), sa.Column("state_at", _TS, nullable=False))


def downgrade() -> None:
    op.drop_table("connections")
