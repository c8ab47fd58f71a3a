"""``flowtide schedule create|list|describe|pause|unpause|trigger|delete``: flows on Temporal Schedules."""

from __future__ import annotations

import argparse
from typing import Any

from flowtide.client import schedules
from flowtide.client.cli.common import EXIT_OK, dump, read_payload, task_queue, temporal


async def cmd_create(args: argparse.Namespace) -> int:
    payload = read_payload(args)
    request = schedules.schedule_request(  # the flow, input and settings checked before a server is involved
        args.file, args.cron, payload, id=args.id, task_queue=task_queue(args), overlap=args.overlap,
        catchup_window=args.catchup_window)
    async with temporal(args) as client:
        handle = await request.create(client)
    if args.json:
        print(dump({"scheduleId": handle.id, "cron": args.cron, "overlap": args.overlap}))
    else:
        print(f"schedule {handle.id} created: '{args.cron}' (UTC), overlap {args.overlap}, "
              f"catch-up window {args.catchup_window}, task queue '{task_queue(args)}'")
    return EXIT_OK


async def cmd_list(args: argparse.Namespace) -> int:
    async with temporal(args) as client:
        rows = await schedules.list_schedules(client)
    if args.json:
        print(dump(rows))
        return EXIT_OK
    if not rows:
        print("no schedules")
        return EXIT_OK
    print(f"{'SCHEDULE':32} {'FLOW':20} {'CRON':16} {'STATE':7} NEXT RUN")
    for r in rows:
        nxt = r["nextRuns"][0] if r["nextRuns"] else "-"
        print(f"{r['id']:32} {r['flowId'] or '-':20} {r['cron'] or '-':16} "
              f"{'paused' if r['paused'] else 'active':7} {nxt}")
    return EXIT_OK


async def cmd_describe(args: argparse.Namespace) -> int:
    async with temporal(args) as client:
        info = await schedules.describe_schedule(client, args.id)
    print(dump(info) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
    return EXIT_OK


async def _act(args: argparse.Namespace, fn: Any, done: str) -> int:
    async with temporal(args) as client:
        await fn(client, args.id)
    print(dump({"scheduleId": args.id, "done": done}) if args.json else f"schedule {args.id}: {done}")
    return EXIT_OK


async def cmd_pause(args: argparse.Namespace) -> int:
    return await _act(args, schedules.pause_schedule, "paused")


async def cmd_unpause(args: argparse.Namespace) -> int:
    return await _act(args, schedules.unpause_schedule, "unpaused")


async def cmd_trigger(args: argparse.Namespace) -> int:
    return await _act(args, schedules.trigger_schedule, "triggered (a run starts now)")


async def cmd_delete(args: argparse.Namespace) -> int:
    return await _act(args, schedules.delete_schedule, "deleted (its runs stay)")
