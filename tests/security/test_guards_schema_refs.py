"""``core.validate`` never fetches: a ``$ref`` outside the document is a validation problem with its path, and
at run time a VALIDATION_ERROR, while a server on 127.0.0.1 that serves the referenced schema sees no request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import flowtide
from tests.support.flows import run_flow, step


class SchemaServer:
    """Serves ``{"type": "string"}`` for any path and counts the requests."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits += 1
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/name.json"


@pytest.fixture
def schemas() -> Iterator[SchemaServer]:
    srv = SchemaServer()
    threading.Thread(target=srv.server.serve_forever, daemon=True).start()
    yield srv
    srv.server.shutdown()
    srv.server.server_close()


def flow(schema: Any) -> dict[str, Any]:
    return {"id": "refs", "steps": [{"stepId": "check", "stepType": "core.validate",
                                     "input": {"data": {"name": 5}, "schema": schema}}]}


def remote(url: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"$ref": url}}}


async def test_validate_names_the_remote_ref(schemas: SchemaServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(flow(remote(schemas.url))))
    code, out, err = await flowtide(capsys, "validate", str(path))
    assert code != 0
    assert "steps[0].input.schema.properties.name.$ref" in out + err and schemas.url in out + err
    assert schemas.hits == 0


async def test_a_run_refuses_the_remote_ref_without_fetching(client: Any, task_queue: str, worker: Any,
                                                             schemas: SchemaServer) -> None:
    # A literal one never starts (the test above); a schema that arrives as data is checked by the step itself.
    doc = flow("{{ initial.schema }}")
    rec = await run_flow(client, task_queue, doc, {"schema": remote(schemas.url)})
    assert rec["status"] == "failed", rec
    err = step(rec, "check")["error"]
    assert err["code"] == "VALIDATION_ERROR" and "properties" in err["message"] and schemas.url in err["message"]
    assert schemas.hits == 0


async def test_in_document_refs_still_work(client: Any, task_queue: str, worker: Any) -> None:
    schema = {"$defs": {"name": {"type": "string"}}, "type": "object", "properties": {"name": {"$ref": "#/$defs/name"}}}
    rec = await run_flow(client, task_queue, flow(schema))
    assert rec["status"] == "completed", rec.get("errors")
    assert step(rec, "check")["output"]["valid"] is False
