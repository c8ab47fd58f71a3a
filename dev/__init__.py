"""Tools for a developer's machine: the embedded Temporal server, the demo and its local service."""

DEFAULT_DB = ".flowtide/temporal.db"  # the embedded server's SQLite file
