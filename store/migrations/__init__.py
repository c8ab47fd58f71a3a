"""Alembic migrations of the service database (applied by ``flowtide serve`` and the admin commands)."""
