"""Cancel watches that outlive the replica: a cancelled run is settled (``client.cancel.settle``) by whichever
replica holds its row's lease.

The replica that takes ``POST .../cancel`` writes the row leased to itself and settles the run at once; when it
dies first, the lease runs out and another replica's sweeper claims the row (one conditional ``UPDATE``, so
exactly one replica) and settles the run with what is left of the grace period: a run whose workflow task keeps
failing is still terminated when the replica that accepted its cancel was killed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError, RPCStatusCode

from flowtide.client.cancel import CANCEL_GRACE_S, settle
from flowtide.service.ops import Service
from flowtide.store.database import now
from flowtide.store.replicas import claim_cancel_watches, forget_cancel_watch, watch_cancel

log = structlog.get_logger("flowtide.service")

LEASE_S = 20.0  # how long past its grace period a replica may take to settle a run before another one may
SWEEP_S = 2.0  # how often each replica looks for watches whose replica died


async def watch(svc: Service, handle: Any, run_id: str) -> None:
    """Note the cancelled run (leased to this replica) and start settling it here."""
    due = now() + timedelta(seconds=CANCEL_GRACE_S)
    try:
        await svc.db(watch_cancel, svc.store, handle.id, run_id, due, due + timedelta(seconds=LEASE_S))
    except SQLAlchemyError as exc:  # the cancel was sent: settle it here even if no other replica could
        log.warning("cancel: could not note the watch in the database", run_id=run_id, error=str(exc)[:300])
    _spawn(svc, handle, run_id, due)


def _spawn(svc: Service, handle: Any, run_id: str, due: datetime) -> None:
    task = asyncio.get_running_loop().create_task(_settle(svc, handle, run_id, due))
    svc.tasks.add(task)  # a reference keeps the task alive
    task.add_done_callback(svc.tasks.discard)


async def _settle(svc: Service, handle: Any, run_id: str, due: datetime) -> None:
    try:
        ended = await settle(handle, grace_s=max(0.0, (due - now()).total_seconds()))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:  # the row stays: another sweep tries again after the lease
            log.warning("cancel: could not settle the run", run_id=run_id, error=str(exc)[:300])
            return
        ended = "gone"
    except Exception as exc:  # Temporal unreachable: the row stays, another sweep tries again after the lease
        log.warning("cancel: could not settle the run", run_id=run_id, error=str(exc)[:300])
        return
    log.info("cancel: run settled", run_id=run_id, outcome=ended)
    await svc.db(forget_cancel_watch, svc.store, handle.id, run_id)


async def sweep_once(svc: Service) -> int:
    """Claim the watches whose lease ran out and settle them here; returns how many were claimed."""
    claimed = await svc.db(claim_cancel_watches, svc.store, now() + timedelta(seconds=LEASE_S))
    if claimed:
        client = await svc.temporal()
        for workflow_id, run_id, due in claimed:
            log.info("cancel: settling a run another replica left", run_id=run_id)
            _spawn(svc, client.get_workflow_handle(workflow_id, run_id=run_id), run_id, due)
    return len(claimed)


async def _sweep(svc: Service) -> None:
    while True:
        try:
            await sweep_once(svc)
        except Exception as exc:  # database or Temporal away for a moment: the next sweep tries again
            log.warning("cancel: sweep failed", error=str(exc)[:300])
        await asyncio.sleep(SWEEP_S)


@asynccontextmanager
async def sweeping(svc: Service) -> AsyncIterator[None]:
    """Run this replica's sweeper (the app's lifespan) and stop it, with the settling it started, afterwards."""
    sweeper = asyncio.get_running_loop().create_task(_sweep(svc))
    try:
        yield
    finally:
        sweeper.cancel()
        for task in [sweeper, *svc.tasks]:
            task.cancel()
        await asyncio.gather(sweeper, *svc.tasks, return_exceptions=True)
