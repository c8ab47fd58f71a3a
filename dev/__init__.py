"""Tools for a developer's machine: the embedded Temporal server, the demo and its local service."""

DEFAULT_DB = ".flowtide/temporal.db"  # the embedded server's SQLite file
# where `flowtide dev` serves the local demo service, which examples/hello.yaml calls by default
DEMO_PORT = 8089
DEMO_URL = f"http://127.0.0.1:{DEMO_PORT}"
