"""Webhook signatures seen: a signed request is accepted once, on every replica sharing the database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("webhook_signatures",
                    sa.Column("hook", sa.String(300), primary_key=True),
                    sa.Column("digest", sa.String(64), primary_key=True),
                    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_webhook_signatures_expires_at", "webhook_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_signatures_expires_at", "webhook_signatures")
    op.drop_table("webhook_signatures")
