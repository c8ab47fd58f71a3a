"""A throwaway PostgreSQL cluster for tests (initdb + pg_ctl in a temp dir); skipped when the binaries are missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flowtide.dev.server import free_port as free_port  # the tests' one free port
from tests.support import parts


def pg_bin() -> str | None:
    """The folder of ``initdb``/``pg_ctl`` (Debian's versioned folders first), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{d}/initdb") and os.path.exists(f"{d}/pg_ctl"):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(os.path.realpath(found)) if found else None


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster; yield its ``postgresql://`` URL (user ``flow``, database ``postgres``); stop it after.

    Skips the test when psycopg or the server binaries are missing, or when running as root without a
    ``postgres`` user to run the cluster as.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        parts.missing("psycopg", "pip install 'flowtide[postgres]'")
    bindir = pg_bin()
    if bindir is None:
        parts.missing("PostgreSQL server binaries (initdb/pg_ctl)", "apt-get install postgresql")
    # PostgreSQL refuses to run as root: then the cluster runs as the postgres user
    if os.geteuid() == 0 and (shutil.which("runuser") is None or
                              subprocess.run(["id", "postgres"], capture_output=True).returncode):
        parts.missing("a 'postgres' user to run the test cluster as (running as root)",
                      "apt-get install postgresql creates it")
    from bench.cluster import Postgres  # the cluster harness's own: one way to run a private cluster
    work = Path(tempfile.mkdtemp(prefix="flowtide-pg-"))
    cluster = Postgres(work / "pg", bindir)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)


def fresh_database(kind: str, folder: Path, request: Any, cluster_fixture: str = "pg_url") -> str:
    """The URL of a new, empty database for one test: a SQLite file in ``folder`` (``kind`` "sqlite"), or a new
    database on the PostgreSQL cluster of the fixture ``cluster_fixture`` (``kind`` "postgresql")."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'flowtide.db'}"
    import psycopg
    base = str(request.getfixturevalue(cluster_fixture))
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + "/" + name
