"""``flowtide connections``: add, list, show, test, reconnect and remove named credentials.

Like the other admin commands they work on the service database directly (``FLOWTIDE_DATABASE_URL``), with
``FLOWTIDE_SECRET_KEY`` to seal and open the credential values. A credential flag given as ``-`` is read
from standard input (one line), which keeps it out of the shell history and the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from flowtide.client.cli.common import NotFound
from flowtide.client.cli.service import _print, _store
from flowtide.store.connection_kinds import AUTH_SCHEMES, LIST_FIELDS, SECRET_FIELDS, all_fields


def _flag(field: str) -> str:
    """The option of a connection field: ``tokenUrl`` -> ``token-url``; a list field is singular (``scope``)."""
    kebab = re.sub(r"(?<!^)([A-Z])", r"-\1", field).lower()
    return kebab.removesuffix("s") if field in LIST_FIELDS else kebab


# argparse dest -> field of the connection (from store.connection_kinds)
FLAGS = {_flag(f).replace("-", "_"): f for f in all_fields()}
SECRET_FLAGS = frozenset(dest for dest, f in FLAGS.items() if f in SECRET_FIELDS)


def _values(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if flag in SECRET_FLAGS and value == "-":
            value = sys.stdin.readline().rstrip("\n")
        if value is not None:
            out[key] = value
    return out


def _connections(project: str | None = None) -> Any:
    from flowtide.store.connections import Connections
    return Connections(_store(), project)  # None: the operator's database-wide connections (list: every one)


def cmd_connections(args: argparse.Namespace) -> int:
    """Run one ``flowtide connections`` action."""
    from flowtide.store.database import StoreError
    from flowtide.store.secretbox import SecretKeyError
    if args.action == "add" and not args.kind:  # before the database is opened (or created)
        raise StoreError(f"--kind is required: {', '.join(AUTH_SCHEMES)}")
    conns = _connections(getattr(args, "project", None))
    try:
        if args.action == "add":
            conns.add(args.name, args.kind, _values(args))
            print(f"connection '{args.name}' added ({args.kind})")
        elif args.action == "reconnect":
            conns.reconnect(args.name, _values(args), kind=args.kind)
            print(f"connection '{args.name}' reconnected: state ok")
        elif args.action == "remove":
            conns.remove(args.name)
            print(f"connection '{args.name}' removed")
        elif args.action == "list":
            _print(conns.list(), args.json, ("name", "project", "kind", "state", "updatedAt", "reason"))
        elif args.action == "show":
            shown = conns.show(args.name)
            if shown is None:
                raise NotFound(f"no connection '{args.name}' (see `flowtide connections list`)")
            print(json.dumps(shown, indent=2))
        else:
            return _test(conns, args.name, args.url)
    except SecretKeyError as exc:
        raise StoreError(str(exc)) from None
    return 0


def _test(conns: Any, name: str, url: str | None) -> int:
    """Check a connection without a flow: an oauth2 one obtains a new token; ``--url`` is then called with it."""
    from flowtide.activities.connection.oauth import access_token
    from flowtide.workflows.errors import StepFailure
    c = conns.get(name)
    if c is None:
        raise NotFound(f"no connection '{name}' (see `flowtide connections list`)")
    try:
        token = asyncio.run(access_token(conns, c, stale=c.secret.get("accessToken"))) if c.kind == "oauth2" else None
    except StepFailure as exc:
        print(f"flowtide: {exc}", file=sys.stderr)
        return 1
    if token:
        print(f"connection '{name}': obtained a new access token ({c.config['grant']} grant)")
    if url:
        return _call(c, token, url)
    if not token:
        print(f"connection '{name}': stored and readable with this FLOWTIDE_SECRET_KEY (give --url to call an API)")
    return 0


def _call(c: Any, token: str | None, url: str) -> int:
    import httpx

    from flowtide.activities.connection.apply import auth_headers
    status = httpx.get(url, headers=auth_headers(c, token), timeout=30).status_code
    print(f"GET {url}: {status}")
    return 0 if status < 400 else 1


LIST_HELP = {"scopes": "an OAuth2 scope (repeat for several)",
             "origins": "where steps may use it, scheme://host[:port] (repeat for several; required for a "
                        "connection without a project that projects use)"}


def _credential_flags(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--kind", choices=AUTH_SCHEMES)
    for dest, field in FLAGS.items():
        if field in LIST_FIELDS:
            sp.add_argument(f"--{_flag(field)}", action="append", help=LIST_HELP[field])
        else:
            sp.add_argument(f"--{_flag(field)}", help="'-': read from standard input" if dest in SECRET_FLAGS
                            else None)


def register(sub: Any) -> None:
    """Add ``connections`` to the ``flowtide`` parser."""
    group = sub.add_parser("connections", help="named credentials that steps use with 'connection: NAME'")
    actions = group.add_subparsers(dest="action", required=True)
    for action in ("add", "reconnect"):
        sp = actions.add_parser(action)
        sp.add_argument("name")
        _credential_flags(sp)
    actions.add_parser("list").add_argument("--json", action="store_true")
    actions.add_parser("show").add_argument("name")
    sp = actions.add_parser("test")
    sp.add_argument("name")
    sp.add_argument("--url", help="an API URL to GET with the connection's credential")
    actions.add_parser("remove").add_argument("name")
    for action, p in actions.choices.items():
        p.set_defaults(fn=cmd_connections)
        if action != "list":
            p.add_argument("--project", help="a project's own connection (default: the database-wide one)")
