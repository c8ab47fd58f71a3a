"""``flowtide codec-server``: Temporal's remote codec protocol decrypts a recorded encrypted run for the Web UI."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from flowtide.client.api import create_worker, run_flow
from flowtide.client.codec import ENCODING, KEY_ENV, data_converter
from flowtide.dev.server import free_port
from flowtide.service.web.codec_server import MAX_BODY, codec_app

UI = "http://127.0.0.1:8233"
STARTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED


async def recorded_run(address: str, key: str, marker: str) -> list[dict[str, Any]]:
    """The encrypted input payloads (protobuf JSON) of a run made by a worker holding ``key``."""
    enc = await Client.connect(address, data_converter=data_converter({KEY_ENV: key}))
    tq = f"tq-codec-{uuid.uuid4().hex[:8]}"
    flow = {"id": "secret", "steps": [{"stepId": "say", "stepType": "core.return",
                                       "input": {"output": {"note": "{{ initial.marker }}"}}}]}
    async with create_worker(enc, tq):
        rec = await run_flow(enc, flow, {"marker": marker}, task_queue=tq, id=f"secret-{uuid.uuid4().hex[:8]}")
    plain_client = await Client.connect(address)  # reads the history as stored: ciphertext
    history = await plain_client.get_workflow_handle(rec["workflowId"]).fetch_history()
    started = next(e for e in history.events if e.event_type == STARTED)
    return [json_format.MessageToDict(p) for p in started.workflow_execution_started_event_attributes.input.payloads]


@contextlib.asynccontextmanager
async def codec_server(key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The codec server on a free loopback port and an HTTP client for it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(codec_app(key, (UI,)), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield http
    finally:
        server.should_exit = True
        await task


async def test_decode_encode_and_cors_for_the_web_ui(dev_server: Any) -> None:
    key, marker = base64.b64encode(os.urandom(32)).decode(), "mrk" + secrets.token_hex(8)
    recorded = await recorded_run(dev_server.address, key, marker)
    assert recorded and all(base64.b64decode(p["metadata"]["encoding"]) == ENCODING for p in recorded)
    assert marker not in json.dumps(recorded)
    async with codec_server(key) as http:
        pre = await http.options("/decode", headers={"origin": UI, "access-control-request-method": "POST",
                                                     "access-control-request-headers": "content-type,x-namespace"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == UI
        r = await http.post("/decode", json={"payloads": recorded}, headers={"origin": UI, "x-namespace": "default"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == UI
        [plain] = r.json()["payloads"]
        assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"
        assert marker in base64.b64decode(plain["data"]).decode()
        again = await http.post("/encode", json={"payloads": [plain]})
        assert base64.b64decode(again.json()["payloads"][0]["metadata"]["encoding"]) == ENCODING
        assert (await http.post("/decode", json=again.json())).json()["payloads"] == [plain]
        other = await http.options("/decode", headers={"origin": "http://evil.example",
                                                       "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        bad = await http.post("/decode", content=b"{nope")
        assert bad.status_code == 400 and "not a codec request" in bad.text
        deep = await http.post("/decode", content=b"[" * 200_000)
        assert deep.status_code == 400 and "nested too deeply" in deep.text

        async def endless() -> Any:  # no Content-Length: the size is counted as the body arrives
            for _ in range(MAX_BODY // 65536 + 2):
                yield b" " * 65536

        big = await http.post("/decode", content=endless())
        assert big.status_code == 413 and "PAYLOAD_TOO_LARGE" in big.text
