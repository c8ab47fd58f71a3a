"""``flowtide breakers list|reset KEY``: the circuit breakers shared by the deployment's (or this machine's) workers."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def cmd_breakers(args: argparse.Namespace) -> int:
    """List the breakers, or reset (close) one; exit 4 (not found) when the key to reset has no breaker."""
    from flowtide.store.breakers import list_breakers, reset_breaker, where
    if args.breakers_cmd == "reset":
        if args.project:
            args.key = f"[{args.project}] {args.key}"
        if not reset_breaker(args.key):
            from flowtide.client.cli.common import NotFound
            raise NotFound(f"no circuit breaker '{args.key}' in {where()} (see `flowtide breakers list`)")
        print(f"circuit breaker '{args.key}' reset (closed)")
        return 0
    rows = list_breakers()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no circuit breakers in {where()}")
    else:
        print(f"{'PROJECT':16} {'KEY':40} {'STATE':10} {'RECENT FAILURES':>16} {'OPENED':>7}  OPEN FOR")
        for r in rows:
            left = f"{r['openForS']}s" if r["state"] == "open" else "-"
            project = (r["project"] or "-")[:16]
            print(f"{project:16} {r['key'][:40]:40} {r['state']:10} {r['recentFailures']:>16} {r['timesOpened']:>7}"
                  f"  {left}"
                  f"   (updated {time.strftime('%H:%M:%S', time.localtime(r['updatedAt']))})")
    return 0


def register(sub: Any) -> None:
    """Add ``breakers`` to the ``flowtide`` parser's subcommands."""
    sp = sub.add_parser("breakers", help="circuit breakers shared by the workers",
                        description="Circuit breakers (step or settings circuitBreaker), per project and "
                                    "connection or host, kept in the database of FLOWTIDE_DATABASE_URL (shared by "
                                    "every worker) or else in FLOWTIDE_BREAKERS_DB (default .flowtide/breakers.db, "
                                    "per machine).")
    bsub = sp.add_subparsers(dest="breakers_cmd", required=True)
    lp = bsub.add_parser("list", help="every breaker with its state")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(fn=cmd_breakers)
    rp = bsub.add_parser("reset", help="close a breaker (forget its failures)")
    rp.add_argument("key", help="the key shown by `breakers list` (a host:port or a connection; a project's "
                                "breaker is '[PROJECT] host:port', or give --project)")
    rp.add_argument("--project", help="the project whose breaker of KEY to reset (default: KEY as listed)")
    rp.set_defaults(fn=cmd_breakers)
