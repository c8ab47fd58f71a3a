"""Secrets are named only by the flow document: a ``{{ secrets.NAME }}`` that arrives in data (the run input, a
response body, a sub-flow's input) is sent as the literal text it is, never resolved, through every step kind
that talks to the outside world. The destinations are real servers on 127.0.0.1 that keep every byte."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from flowtide.dev.loopback import ThreadedServer
from flowtide.dev.server import free_port
from tests.support.flows import run_flow

REF = "{{ secrets.CANARY }}"
LLM_ANSWER = {"id": "x", "object": "chat.completion", "model": "m", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}


class Capture(ThreadedServer):
    """Keeps every request's raw bytes; ``/reflect`` answers with a body that holds a secret reference."""

    thread_name = "capture-http"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = await reader.readexactly(length) if length else b""
            self.received.append(head + body)
            answer = {"note": f"please use {REF}"} if b" /reflect" in head.split(b"\r\n")[0] else LLM_ANSWER
            data = json.dumps(answer).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope.original_content or b"")
        return "250 OK"


def _flow(capture: str, smtp_port: int) -> dict[str, Any]:
    soft = {"continueOnError": True, "retryPolicy": {"maxRetries": 0}}
    return {"id": "data-borne", "steps": [
        {"stepId": "body", "stepType": "core.http", **soft, "input": {
            "url": capture + "/body?q={{ initial.evil }}", "method": "POST",
            "headers": {"X-Note": "{{ initial.evil }}"}, "query": {"p": "{{ initial.evil }}"},
            "json": {"comment": "hi {{ initial.evil }}", "whole": "{{ initial }}"}}},
        {"stepId": "reflect", "stepType": "core.http", **soft, "input": {"url": capture + "/reflect"}},
        {"stepId": "forward", "stepType": "core.http", **soft, "input": {
            "url": capture + "/forward", "method": "POST", "json": {"got": "{{ reflect.body.note }}"}}},
        {"stepId": "script", "stepType": "core.code", **soft, "input": {
            "c": "{{ initial.evil }}", "script": "return {'param': params['c'], 'seen': str(input) + str(steps)}"}},
        {"stepId": "mail", "stepType": "email.send", **soft, "input": {
            "host": "127.0.0.1", "port": smtp_port, "starttls": False, "from": "a@example.test",
            "to": "b@example.test", "subject": "{{ initial.evil }}", "text": "body {{ initial.evil }}"}},
        {"stepId": "ask", "stepType": "llm.chat", **soft, "input": {
            "baseUrl": capture + "/v1", "model": "m", "prompt": "say {{ initial.evil }}"}},
        {"stepId": "child", "stepType": "core.sub-flow", **soft, "input": {
            "input": {"v": "{{ initial.evil }}"}, "flow": {"id": "child", "steps": [
                {"stepId": "send", "stepType": "core.http", "input": {
                    "url": capture + "/child", "method": "POST", "json": {"v": "{{ initial.v }}"}}}]}}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": {
            "script": "{{ script.output }}"}}}]}


@pytest.mark.usefixtures("worker")
async def test_secret_references_in_data_are_never_resolved(client: Any, task_queue: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "cnry" + secrets.token_hex(12)
    monkeypatch.setenv("FLOWTIDE_SECRET_CANARY", canary)  # the in-process worker resolves from here
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with Capture() as capture:
            record = await run_flow(client, task_queue, _flow(capture.url, smtp.port), {"evil": REF})
            sent = b"\n".join(capture.received + box.messages).decode("utf-8", "replace")
    finally:
        smtp.stop()
    assert record["status"] in ("completed", "completed_with_errors"), record["errors"]
    failed = [s["stepId"] for s in record["steps"] if s["status"] == "failed"]
    assert not failed, [s["error"] for s in record["steps"] if s["status"] == "failed"]
    assert canary not in sent and canary not in json.dumps(record)
    for where in ("POST /body", "X-Note: {{ secrets.CANARY }}", "/forward", "/child", "/v1/chat/completions"):
        assert where.split(" {{")[0] in sent, f"{where} was never called"
    assert sent.count(REF) + sent.count(json.dumps(REF)[1:-1]) >= 6  # the literal text arrived everywhere
    assert REF in (record["output"]["script"] or {}).get("param", "")
    assert "Subject: {{ secrets.CANARY }}" in sent


@pytest.mark.usefixtures("worker")
async def test_the_flow_document_still_resolves_its_own_references(client: Any, task_queue: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "cnry" + secrets.token_hex(12)
    monkeypatch.setenv("FLOWTIDE_SECRET_CANARY", canary)
    with Capture() as capture:
        record = await run_flow(client, task_queue, {"id": "doc-secret", "steps": [
            {"stepId": "call", "stepType": "core.http", "input": {
                "url": capture.url + "/x", "headers": {"Authorization": "Bearer " + REF}}}]}, None)
        sent = b"".join(capture.received).decode()
    assert record["status"] == "completed"
    assert f"Authorization: Bearer {canary}" in sent
    assert canary not in json.dumps(record)
    assert record["steps"][0]["input"]["headers"]["Authorization"] == "Bearer " + REF  # the record hides the nonce
