"""llm.chat against a small real OpenAI-protocol HTTP server on 127.0.0.1, through the real activity boundary.

The server is ``tests.support.llm_server`` (shared with the replay-corpus recorder). The model name picks its
behaviour: ok, truncated, filtered, limited, quota, long, policy, broken, slow, garbage; any other name is an
unknown model (404).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.llm import llm_chat, map_llm_exception, retry_after_seconds
from tests.support.activities import step_task
from tests.support.llm_server import KEY, LLMServer, OpenAIish


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with LLMServer() as server:
        yield server.url


def task(inp: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    return step_task("llm.chat", inp, step_id="ask", title="Ask", timeout=timeout)


def chat(url: str, model: str = "ok", **kw: Any) -> dict[str, Any]:
    return {"baseUrl": url, "apiKey": KEY, "model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


async def run(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return await ActivityEnvironment().run(llm_chat, task(inp, **kw))


async def fails(inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await run(inp, **kw)
    return info.value


async def test_completion(llm_url):
    res = await run(chat(llm_url, temperature=0.2, maxTokens=50))
    assert res["output"] == {"content": "echo: hi", "model": "ok-2024", "finishReason": "stop",
                             "usage": {"promptTokens": 5, "completionTokens": 3, "totalTokens": 8}}
    assert res["warnings"] == []
    sent = OpenAIish.received[-1]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50


async def test_prompt_shorthand_and_raw(llm_url):
    res = await run({"baseUrl": llm_url, "apiKey": KEY, "model": "ok", "system": "be brief", "prompt": "yo",
                     "includeRaw": True})
    assert res["output"]["content"] == "echo: yo" and res["output"]["raw"]["id"] == "c1"
    assert OpenAIish.received[-1]["messages"] == [{"role": "system", "content": "be brief"},
                                                  {"role": "user", "content": "yo"}]


async def test_api_key_from_a_secret_is_redacted(llm_url, monkeypatch):
    monkeypatch.setenv("FLOWTIDE_SECRET_LLM_KEY", KEY)
    res = await run(chat(llm_url, apiKey="{{ secrets.LLM_KEY }}"))
    assert res["output"]["content"] == "echo: hi" and KEY not in repr(res)


async def test_invalid_api_key(llm_url):
    err = await fails(chat(llm_url, apiKey="sk-wrong"))
    record, output, _ = err.details
    assert err.type == "LLM_INVALID_API_KEY" and err.non_retryable
    assert record["type"] == "operational" and record["providerStatus"] == 401
    assert output["error"]["error"]["code"] == "invalid_api_key"
    assert "Incorrect API key" in record["message"]


async def test_rate_limit_honours_retry_after(llm_url):
    err = await fails(chat(llm_url, "limited"))
    assert err.type == "LLM_RATE_LIMIT" and not err.non_retryable
    assert err.next_retry_delay is not None and err.next_retry_delay.total_seconds() == 7
    assert err.details[0]["providerStatus"] == 429


async def test_spent_quota_is_not_retried(llm_url):
    err = await fails(chat(llm_url, "quota"))
    assert err.type == "LLM_RATE_LIMIT" and err.non_retryable


async def test_context_too_long_and_content_policy(llm_url):
    err = await fails(chat(llm_url, "long"))
    assert err.type == "LLM_CONTEXT_TOO_LONG" and err.non_retryable and "8192" in str(err)
    err = await fails(chat(llm_url, "policy"))
    assert err.type == "LLM_CONTENT_POLICY" and err.non_retryable


async def test_content_filter_finish_is_an_operational_error_with_output(llm_url):
    err = await fails(chat(llm_url, "filtered"))
    record, output, _ = err.details
    assert err.type == "LLM_CONTENT_POLICY" and err.non_retryable and record["type"] == "operational"
    assert output["finishReason"] == "content_filter" and output["content"] is None


async def test_length_finish_is_a_warning(llm_url):
    res = await run(chat(llm_url, "truncated", maxTokens=3))
    assert res["output"]["content"] == "partial ans" and res["output"]["finishReason"] == "length"
    [warning] = res["warnings"]
    assert warning["code"] == "LLM_OUTPUT_TRUNCATED" and warning["severity"] == "warning"


async def test_server_error_is_retryable(llm_url):
    err = await fails(chat(llm_url, "broken"))
    assert err.type == "LLM_SERVER_ERROR" and not err.non_retryable
    assert err.details[0]["providerStatus"] == 500 and err.next_retry_delay.total_seconds() == 2


async def test_unknown_model_and_garbage(llm_url):
    err = await fails(chat(llm_url, "gpt-nope"))
    assert err.type == "LLM_INVALID_REQUEST" and err.non_retryable and err.details[0]["providerStatus"] == 404
    err = await fails(chat(llm_url, "garbage"))
    assert err.type == "LLM_UNKNOWN_ERROR" and not err.non_retryable


async def test_answers_are_read_within_the_response_limit(llm_url):
    res = await run(chat(llm_url, "gzipped"))
    assert res["output"]["content"] == "echo: hi"
    err = await fails(chat(llm_url, "bomb"))  # 40 KB on the wire, 40 MB inflated: stopped at 256 KiB
    assert err.type == "HTTP_RESPONSE_TOO_LARGE" and err.non_retryable and "262144 bytes" in str(err)


async def test_timeout(llm_url):
    err = await fails(chat(llm_url, "slow", timeout=0.3))
    assert err.type == "LLM_TIMEOUT" and not err.non_retryable


async def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = await fails(chat(f"http://127.0.0.1:{port}/v1"))
    assert err.type == "LLM_CONNECTION_FAILED" and not err.non_retryable
    assert err.details[0]["type"] == "execution"


async def test_bad_input(llm_url):
    assert (await fails({"baseUrl": llm_url, "messages": [{"role": "user"}]})).type == "VALIDATION_ERROR"
    assert (await fails({"baseUrl": llm_url, "model": "ok"})).type == "VALIDATION_ERROR"
    assert (await fails(chat("ftp://127.0.0.1/v1"))).type == "HTTP_DESTINATION_BLOCKED"


async def test_base_url_passes_the_ssrf_guard():
    # A flow author must not reach the cloud metadata service (or any private address) through llm.chat.
    assert (await fails(chat("http://169.254.169.254/latest"))).type == "HTTP_DESTINATION_BLOCKED"
    assert (await fails(chat("http://10.0.0.7/v1"))).type == "HTTP_DESTINATION_BLOCKED"


def test_retry_after_forms():
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "99999"})) == 600.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


def test_mapper_leaves_other_exceptions_to_the_boundary():
    assert map_llm_exception(KeyError("x")) is None
    failure = map_llm_exception(httpx.ReadTimeout("slow"))
    assert failure is not None and failure.code == "LLM_TIMEOUT"
