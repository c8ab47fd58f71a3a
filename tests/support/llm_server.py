"""A small OpenAI-protocol chat-completions server on 127.0.0.1 (``POST /v1/chat/completions``).

Used by ``tests/unit/test_llm_activity.py`` and by the replay-corpus recorder. It accepts only
``Authorization: Bearer KEY`` (401 otherwise). The model name picks the behaviour: ok, truncated, filtered,
limited, quota, long, policy, broken, slow, garbage, gzipped (an ok answer, gzip-encoded), bomb (200 with a
40 KB gzip body that inflates to 40 MB); any other name is an unknown model (404)::

    with LLMServer() as llm:
        llm.url  # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-test-0123456789"


class OpenAIish(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout test)

    def completion(self, body: dict[str, Any], finish: str, content: str | None) -> None:
        self.reply(200, {"id": "c1", "object": "chat.completion", "model": body["model"] + "-2024",
                         "choices": [{"index": 0, "finish_reason": finish,
                                      "message": {"role": "assistant", "content": content}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body)
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": "no route"}})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self.reply(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
        model, last = body["model"], body["messages"][-1]["content"]
        simple = {
            "limited": (429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"Retry-After": "7"}),
            "quota": (429, {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}, {}),
            "long": (400, {"error": {"message": "This model's maximum context length is 8192 tokens",
                                     "code": "context_length_exceeded"}}, {}),
            "policy": (400, {"error": {"message": "Your request was rejected by our safety system",
                                       "code": "content_policy_violation"}}, {}),
            "broken": (500, {"error": {"message": "The server had an error"}}, {"Retry-After": "2"}),
        }
        if model in simple:
            status, payload, headers = simple[model]
            return self.reply(status, payload, headers)
        if model == "slow":
            time.sleep(1.0)
        if model == "garbage":
            return self.reply(200, b"<html>not json</html>")
        if model == "bomb":
            return self.reply(200, gzip.compress(b" " * 40_000_000), {"Content-Encoding": "gzip"})
        if model == "gzipped":
            answer = {"id": "c1", "object": "chat.completion", "model": "gzipped-2024", "usage": {},
                      "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": f"echo: {last}"}}]}
            return self.reply(200, gzip.compress(json.dumps(answer).encode()), {"Content-Encoding": "gzip"})
        if model in ("ok", "slow"):
            return self.completion(body, "stop", f"echo: {last}")
        if model == "truncated":
            return self.completion(body, "length", "partial ans")
        if model == "filtered":
            return self.completion(body, "content_filter", None)
        return self.reply(404, {"error": {"message": f"The model '{model}' does not exist",
                                          "code": "model_not_found"}})


class LLMServer:
    """Start/stop like ``DemoService``: ``with LLMServer() as llm: llm.url`` (loopback only)."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "LLMServer is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> LLMServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), OpenAIish)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="llm-stub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
