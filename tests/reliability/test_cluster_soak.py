"""The cluster soak (``bench/soak.py``) on the harness of ``bench/cluster.py``: two API replicas behind a
round-robin proxy on one PostgreSQL, three workers in working folders of their own, one Temporal server.

Flows are started over REST, a signed webhook and a schedule at a steady rate while a worker is killed every
30 s, an API replica is killed once, PostgreSQL and the Temporal server are restarted once each. No run may be
lost, stuck or failed; every step of every run reaches the target at least once, and no more often than the
faults explain; the API answers outside the fault windows. The suite runs 2 minutes of load (the whole test
stays under 4 minutes); ``pytest -m soak tests/reliability/test_cluster_soak.py`` runs the 10-minute soak.
Page sessions must survive the replica's death, the rate limit hold within 20 % across replicas and the
breaker let through what one breaker would, give or take each worker's one-second view of it (they live in
the database: docs/operations.md, What replicas share).
"""

from __future__ import annotations

import pytest

from bench.soak import problems, soak
from tests.support import parts
from tests.support.postgres import pg_bin


def _soak(minutes: float) -> None:
    if pg_bin() is None:
        parts.missing("PostgreSQL server binaries (initdb/pg_ctl)", "apt-get install postgresql")
    report = soak(minutes)
    print(report)
    assert report["runs"]["rest"] > 0 and report["sideEffects"]["workerKills"] >= 3
    assert [f["fault"] for f in report["faults"]] == ["api replica killed", "postgresql restarted",
                                                      "temporal restarted"]
    assert problems(report, sessions=True, shared=True) == [], report


@pytest.mark.timeout(240)
def test_two_minute_soak_with_faults_loses_no_run() -> None:
    _soak(2)


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_ten_minute_soak_with_faults_loses_no_run() -> None:
    _soak(10)
