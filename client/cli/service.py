"""``flowtide serve`` and the service's admin commands: ``projects``, ``keys``, ``flows``, ``hooks``.

The admin commands work on the service database directly (``FLOWTIDE_DATABASE_URL``, default SQLite at
``.flowtide/flowtide.db``), no key needed; they apply pending migrations first, like ``serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from flowtide.client.cli.common import EXIT_INVALID, EXIT_OK


def _store() -> Any:
    from flowtide.store.database import Store
    store = Store()
    store.migrate()
    return store


def _print(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print("  ".join(str(r.get(c) if r.get(c) is not None else "-") for c in columns))


# ---- serve ------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def serving(host: str, port: int, client: Any = None, task_queue: str | None = None,
                  database_url: str | None = None) -> AsyncIterator[Any]:
    """Run the service (uvicorn) in this event loop for the duration; yields the uvicorn server."""
    import asyncio

    import uvicorn

    from flowtide.service.app import build_service, create_app

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the command (or the test) decides when to stop."""

        ready = asyncio.Event()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            self.ready.set()

    svc = await asyncio.to_thread(build_service, client=client, task_queue=task_queue,
                                    database_url=database_url)
    server = QuietServer(uvicorn.Config(create_app(svc), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="on"))  # the lifespan runs the cancel sweeper
    task = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done() or not server.started:
        task.result()
        raise OSError(f"the service could not listen on {host}:{port}")
    import structlog
    structlog.get_logger("flowtide.service").info("flowtide API listening", url=f"http://{host}:{port}",
                                                  database=svc.store.engine.url.render_as_string(hide_password=True))
    try:
        yield server
    finally:
        server.should_exit = True
        await task


async def cmd_serve(args: argparse.Namespace) -> int:
    from flowtide.client.cli.common import wait_for_stop
    async with serving(args.host, args.port):
        print(f"flowtide serve: http://{args.host}:{args.port} (runs page /runs, REST /v1, POST /graphql, "
              "/openapi.json). Ctrl-C stops.", file=sys.stderr)
        await wait_for_stop()
    return EXIT_OK


async def cmd_codec_server(args: argparse.Namespace) -> int:
    """Serve Temporal's remote codec protocol (``/decode``, ``/encode``) for the Web UI."""
    import os

    import uvicorn

    from flowtide.client.codec import KEY_ENV, CodecKeyError
    from flowtide.service.web.codec_server import DEFAULT_ORIGINS, codec_app
    origins = tuple(args.origin or DEFAULT_ORIGINS)
    if not os.environ.get(KEY_ENV, "").strip():
        print(f"flowtide codec-server: set {KEY_ENV} to the key the workers encrypt with", file=sys.stderr)
        return EXIT_INVALID
    try:
        app = codec_app(os.environ.get(KEY_ENV, ""), origins)
    except CodecKeyError as exc:
        print(f"flowtide codec-server: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"flowtide codec-server: http://{args.host}:{args.port} (POST /decode, /encode) for {', '.join(origins)}; "
          f"start the Web UI with --ui-codec-endpoint http://{args.host}:{args.port}", file=sys.stderr)
    await uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).serve()
    return EXIT_OK


# ---- admin ------------------------------------------------------------------------------------------
def cmd_projects(args: argparse.Namespace) -> int:
    store = _store()
    if args.action == "create":
        store.create_project(args.id)
        print(f"project {args.id} created")
    else:
        _print(store.list_projects(), args.json, ("id", "createdAt"))
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    store = _store()
    if args.action == "create":
        key_id, key = store.create_key(args.project, args.role, args.name)
        print(f"key {key_id} (role {args.role}) for project {args.project}; it is shown once:", file=sys.stderr)
        print(key)
    elif args.action == "revoke":
        store.revoke_key(args.key_id)
        print(f"key {args.key_id} revoked")
    else:
        _print(store.list_keys(args.project), args.json, ("id", "project", "role", "name", "createdAt", "revokedAt"))
    return EXIT_OK


def cmd_flows(args: argparse.Namespace) -> int:
    from flowtide.service.ops import checked_flow
    if args.action == "deploy":  # the document checked before the database is opened (or created)
        doc = _read_document(Path(args.file))
        flow_id = doc.get("id") if isinstance(doc, dict) and doc.get("id") else Path(args.file).stem
        doc, title = checked_flow(str(flow_id), doc)
        out = _store().deploy(args.project, str(flow_id), doc, title, "cli")
        print(f"flow {out['flowId']} revision {out['revision']} {_deployed(out)}")
        return EXIT_OK
    store = _store()
    if args.action == "revert":
        old = store.revision(args.project, args.flow_id, args.revision)
        if old is None:
            from flowtide.client.cli.common import NotFound
            raise NotFound(f"no revision {args.revision} of flow '{args.flow_id}' (see `flowtide flows list`)")
        out = store.deploy(args.project, args.flow_id, old["document"], old["title"], "cli")
        print(f"flow {out['flowId']} revision {out['revision']} {_deployed(out)} (from revision {args.revision})")
    else:
        _print(store.flows(args.project), args.json, ("flowId", "revision", "deployedAt", "title"))
    return EXIT_OK


def _deployed(out: dict[str, Any]) -> str:
    return "unchanged (identical to the deployed revision; nothing stored)" if out.get("unchanged") else "deployed"


def _read_document(path: Path) -> Any:
    """The flow file as the flow parser reads it (YAML 1.2 booleans, duplicate keys refused, size checked):
    what is deployed is exactly what ``flowtide run`` would run."""
    from flowtide.client.flowfiles import read_flow_file
    from flowtide.store.database import StoreError
    from flowtide.workflows.errors import FlowValidationError
    from flowtide.workflows.language import parse_text
    try:
        return parse_text(read_flow_file(path), str(path))
    except FlowValidationError as exc:
        raise StoreError(str(exc)) from None


def cmd_hooks(args: argparse.Namespace) -> int:
    secret = _store().set_hook_secret(args.project, args.flow_id)
    print(f"webhook secret of flow {args.flow_id} in project {args.project}; it is shown once:", file=sys.stderr)
    print(secret)
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``serve``, ``projects``, ``keys``, ``flows`` and ``hooks`` to the ``flowtide`` parser."""
    sp = sub.add_parser("serve", help="serve the HTTP API, webhooks and GraphQL")
    sp.set_defaults(fn=cmd_serve)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8088)
    sp = sub.add_parser("codec-server", help="decrypt payloads for the Temporal Web UI (remote codec protocol)")
    sp.set_defaults(fn=cmd_codec_server)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8081)  # not 8089: the demo service of flowtide dev
    sp.add_argument("--origin", action="append", default=None, help="the Web UI's origin (repeatable; default "
                    "http://127.0.0.1:8233 and http://localhost:8233)")
    if "dev" in sub.choices:
        sub.choices["dev"].add_argument("--api-port", type=int, default=8088, help="port of the HTTP API (0: none)")
    groups = sub.add_parser("projects", help="service projects").add_subparsers(dest="action", required=True)
    groups.add_parser("create").add_argument("id")
    groups.add_parser("list").add_argument("--json", action="store_true")
    for p in groups.choices.values():
        p.set_defaults(fn=cmd_projects)
    keys = sub.add_parser("keys", help="service API keys").add_subparsers(dest="action", required=True)
    sp = keys.add_parser("create")
    sp.add_argument("--project", required=True)
    sp.add_argument("--role", choices=("read", "run", "admin"), default="run")
    sp.add_argument("--name")
    sp = keys.add_parser("list")
    sp.add_argument("--project")
    sp.add_argument("--json", action="store_true")
    keys.add_parser("revoke").add_argument("key_id")
    for p in keys.choices.values():
        p.set_defaults(fn=cmd_keys)
    _register_flows(sub)


def _register_flows(sub: Any) -> None:
    flows = sub.add_parser("flows", help="deployed flows of a project").add_subparsers(dest="action", required=True)
    sp = flows.add_parser("deploy")
    sp.add_argument("file")
    sp.add_argument("--project", required=True)
    sp = flows.add_parser("list")
    sp.add_argument("--project", required=True)
    sp.add_argument("--json", action="store_true")
    sp = flows.add_parser("revert")
    sp.add_argument("flow_id")
    sp.add_argument("--revision", type=int, required=True)
    sp.add_argument("--project", required=True)
    for p in flows.choices.values():
        p.set_defaults(fn=cmd_flows)
    hooks = sub.add_parser("hooks", help="webhook secrets").add_subparsers(dest="action", required=True)
    sp = hooks.add_parser("secret", help="create or rotate a flow's webhook secret (printed once)")
    sp.add_argument("flow_id")
    sp.add_argument("--project", required=True)
    sp.set_defaults(fn=cmd_hooks)
