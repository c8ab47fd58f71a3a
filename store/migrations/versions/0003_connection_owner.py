"""Connections: one namespace per project (``project_id`` "" = database-wide, the operator's), key (project, name).

A project's connection of a name may shadow the database-wide one of that name for that project's runs; a
project never sees, changes or removes another project's or the operator's rows. The table is rebuilt
(SQLite cannot change a primary key in place); NULL project ids become "".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_COLUMNS = "name, kind, config, secret, state, reason, expires_at, created_at, updated_at, state_at"


def _table(name: str, owner: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(name, sa.Column("name", sa.String(100), primary_key=True), owner,
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("config", sa.Text, nullable=False), sa.Column("secret", sa.Text, nullable=False),
                    sa.Column("state", sa.String(8), nullable=False), sa.Column("reason", sa.Text),
                    sa.Column("expires_at", _TS), sa.Column("created_at", _TS, nullable=False),
                    sa.Column("updated_at", _TS, nullable=False), sa.Column("state_at", _TS, nullable=False))


def upgrade() -> None:
    _table("connections_0003", sa.Column("project_id", sa.String(64), primary_key=True, server_default=""))
    op.execute(f"INSERT INTO connections_0003 (project_id, {_COLUMNS}) "
               f"SELECT COALESCE(project_id, ''), {_COLUMNS} FROM connections")
    op.drop_table("connections")
    op.rename_table("connections_0003", "connections")


def downgrade() -> None:
    _table("connections_0002", sa.Column("project_id", sa.String(64)))
    op.execute(f"INSERT INTO connections_0002 (project_id, {_COLUMNS}) SELECT NULLIF(project_id, ''), "
               f"{_COLUMNS} FROM connections WHERE project_id = '' "
               "OR name NOT IN (SELECT name FROM connections WHERE project_id = '')")
    op.drop_table("connections")
    op.rename_table("connections_0002", "connections")
