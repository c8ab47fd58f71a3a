"""``datastore.query`` on PostgreSQL goes through the one network guard, like every other connection.

Before, the flow's connection string went to libpq as written: any host (the service's own database, a private
address, a unix socket with peer authentication) and any parameter (``passfile``, ``sslkey``: files libpq reads).
Now the host is resolved and checked (``FLOWTIDE_HTTP_ALLOW``), the connection pinned to the checked address
(``hostaddr``), and only plain parameters pass. Nothing here sends a packet anywhere but loopback: refused
destinations are refused before any connection is made.
"""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.datastore import datastore_query, guarded_conninfo
from flowtide.workflows.errors import StepFailure
from tests.support.activities import step_task


async def code_of(connection: str) -> str:
    """The step's failure code; only loopback strings are given to the whole step (it may connect)."""
    task = step_task("datastore.query", {"connection": connection, "sql": "SELECT 1"}, step_id="q", timeout=5)
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(datastore_query, task)
    return str(info.value.type)


@pytest.mark.parametrize("connection, code", [
    ("postgresql://u:p@10.1.2.3:5432/db", "HTTP_DESTINATION_BLOCKED"),          # a private address
    ("postgresql://u:p@169.254.169.254/db", "HTTP_DESTINATION_BLOCKED"),        # cloud metadata
    ("postgresql://u@/db?host=/var/run/postgresql", "HTTP_DESTINATION_BLOCKED"),  # a unix socket
    ("postgresql://u@/db?host=127.0.0.1,127.0.0.2&port=1", "HTTP_DESTINATION_BLOCKED"),  # a host list
    ("postgresql://u@127.0.0.1:1,127.0.0.1:2/db", "HTTP_DESTINATION_BLOCKED"),   # a host list in the URL
    ("postgresql://u@127.0.0.1:1/db?sslkey=/etc/passwd", "VALIDATION_ERROR"),    # a file libpq would read
    ("postgresql://u@127.0.0.1:1/db?passfile=/etc/shadow", "VALIDATION_ERROR"),
    ("postgresql://u@127.0.0.1:1/db?service=x", "VALIDATION_ERROR"),
])
async def test_postgres_destinations_pass_the_network_guard(connection: str, code: str) -> None:
    # the guard alone: it resolves and decides, and never connects, whatever the string
    with pytest.raises(StepFailure) as info:
        await guarded_conninfo(connection, 5)
    assert info.value.code == code


async def test_the_step_connects_only_through_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "")
    assert await code_of("postgresql://u:p@127.0.0.1:5432/db") == "HTTP_DESTINATION_BLOCKED"
    assert await code_of("postgresql://u@127.0.0.1:1/db?sslkey=/etc/passwd") == "VALIDATION_ERROR"
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")  # allowed: it connects (nothing listens on port 1)
    assert await code_of("postgresql://u:p@127.0.0.1:1/db") == "DATA_STORE_CONNECTION_FAILED"


@pytest.mark.parametrize("query", ["host=pg.attacker.example&sslmode=disable", "HOST=pg.attacker.example",
                                   "dbname=x&port=6543", "hostaddr=203.0.113.9", "user=postgres"])
def test_a_connections_password_goes_only_to_the_host_its_origins_allow(query: str) -> None:
    # libpq lets the query override the URL's host (the last value wins); the origin checked is the URL's
    from flowtide.activities.connection.apply import _datastore, check_origin
    from flowtide.store.connections import Conn
    c = Conn("billing-db", "basic", {"username": "app", "origins": ["postgresql://db.partner.com:5432"]},
             {"password": "pw-" + query[:4]})
    inp = {"connection": f"postgresql://db.partner.com:5432/x?{query}"}
    check_origin(c, "datastore.query", inp, "acme")  # the URL's host is one of the origins
    with pytest.raises(StepFailure, match="may not set") as info:
        _datastore(c, None, inp)
    assert info.value.code == "VALIDATION_ERROR" and "pw-" not in info.value.message
    fine = _datastore(c, None, {"connection": "postgresql://db.partner.com:5432/x?sslmode=require"})
    assert fine["connection"].startswith("postgresql://app:pw-")
