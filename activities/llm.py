"""The ``llm.chat`` step: one chat completion from an OpenAI-compatible API, over httpx.

Input::

    {"baseUrl"?: FLOWTIDE_LLM_BASE_URL or https://api.openai.com/v1, "apiKey"?, "model",
     "messages"?: [{"role", "content"}], "prompt"?, "system"?, "temperature"?, "maxTokens"?,
     "responseFormat"?, "headers"?, "timeout"?: seconds, "includeRaw"?: false}

``prompt`` (with an optional ``system``) is shorthand for a one-turn ``messages`` list.

Output: ``{"content", "model", "usage": {"promptTokens", "completionTokens", "totalTokens"},
"finishReason", "raw"?}``. ``finishReason: length`` succeeds with an ``LLM_OUTPUT_TRUNCATED`` warning;
``content_filter`` is the ``LLM_CONTENT_POLICY`` operational error.

The base URL can come from the flow, so the call goes through the network guard of ``core.http``
(``guards.network``: a local model server must be listed in ``FLOWTIDE_HTTP_ALLOW``; a refused one is
``HTTP_DESTINATION_BLOCKED``). Every failure goes through ``map_llm_exception``, the AI / LLM family's one
mapper.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from flowtide.activities._boundary import step_activity
from flowtide.activities._http_body import ACCEPT_ENCODING, InvalidBody, as_read, read_limited, too_large
from flowtide.activities._step import StepContext, StepResult
from flowtide.guards.network import pooled_client
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.limits import DEFAULT_LIMITS

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "FLOWTIDE_LLM_BASE_URL"
MAX_RETRY_AFTER_S = 600.0  # a provider asking for a longer pause gets the preset's own backoff instead
_CONTEXT_RE = re.compile(r"context.?length|context window|maximum context|too many tokens|prompt is too long|"
                         r"reduce the length", re.IGNORECASE)
_POLICY_RE = re.compile(r"content.?filter|content.?policy|content management policy|safety system|"
                        r"flagged", re.IGNORECASE)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The pause a provider asks for: ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date."""
    try:
        if "retry-after-ms" in headers:
            return min(float(headers["retry-after-ms"]) / 1000, MAX_RETRY_AFTER_S)
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return min(float(value), MAX_RETRY_AFTER_S)
        when = parsedate_to_datetime(value)
        return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER_S)
    except (ValueError, TypeError):
        return None  # an unreadable header: fall back to the retry preset's delay


def _error_fields(response: httpx.Response) -> tuple[Any, str, str]:
    """The parsed body, the provider's error message and its error code or type (lower case)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:2048]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        code = str(err.get("code") or err.get("type") or "").lower()
    else:
        message, code = str(err or ""), ""
    return body, message or response.text[:500] or response.reason_phrase, code


def _status_code(status: int, message: str, code: str) -> str:
    if status == 401:
        return "LLM_INVALID_API_KEY"
    if status in (400, 403, 413, 422) and (code in _POLICY_CODES or _POLICY_RE.search(message)):
        return "LLM_CONTENT_POLICY"
    if status == 403:
        return "LLM_INVALID_API_KEY"  # the key is valid but not for this model or organisation
    if status == 429:
        return "LLM_RATE_LIMIT"
    if status in (400, 413, 422) and (code in _CONTEXT_CODES or _CONTEXT_RE.search(message)):
        return "LLM_CONTEXT_TOO_LONG"
    if status == 408:
        return "LLM_TIMEOUT"
    if status >= 500:
        return "LLM_SERVER_ERROR"
    return "LLM_INVALID_REQUEST"  # other 4xx (unknown model, bad parameter) and redirects (check baseUrl)


def _status_failure(response: httpx.Response) -> StepFailure:
    """The operational error for a non-2xx answer; its output keeps the provider's error body."""
    status = response.status_code
    body, message, code = _error_fields(response)
    mapped = _status_code(status, message, code)
    # A spent quota answers 429 too, but no pause will refill it.
    retryable = False if mapped == "LLM_RATE_LIMIT" and code == "insufficient_quota" else None
    return StepFailure(mapped, f"{response.request.method} {response.request.url} returned {status}: {message}",
                       type="operational", provider_status=status, detail=response.text[:2048],
                       retry_after_s=retry_after_seconds(response.headers), retryable=retryable,
                       output={"status": status, "error": body})


def map_llm_exception(exc: BaseException) -> StepFailure | None:
    """The AI / LLM family's one mapper: httpx errors and non-2xx answers to taxonomy codes.

    Args:
        exc: what the call raised (``httpx.HTTPStatusError`` carries the provider's answer).

    Returns:
        The ``StepFailure`` to report, or None when ``exc`` is not an HTTP error.
    """
    name = type(exc).__name__
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_failure(exc.response)
    if isinstance(exc, httpx.TimeoutException):
        return StepFailure("LLM_TIMEOUT", f"the model did not answer in time ({name}): {exc}", detail=name)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.TooManyRedirects
                  | httpx.InvalidURL):
        return StepFailure("LLM_INVALID_REQUEST", f"the request cannot be sent ({name}): {exc}", detail=name)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError | OSError):
        return StepFailure("LLM_CONNECTION_FAILED", f"the provider could not be reached ({name}): {exc}",
                           detail=name)
    if isinstance(exc, httpx.HTTPError):
        return StepFailure("LLM_UNKNOWN_ERROR", f"the model call failed ({name}): {exc}", detail=name)
    return None


def _messages(inp: dict[str, Any]) -> list[dict[str, Any]]:
    messages = inp.get("messages")
    if messages is None and inp.get("prompt") is not None:
        messages = ([{"role": "system", "content": str(inp["system"])}] if inp.get("system") else []) + [
            {"role": "user", "content": str(inp["prompt"])}]
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise StepFailure("VALIDATION_ERROR", "llm.chat needs 'messages' (a non-empty list of {role, content}) "
                          "or 'prompt'")
    return messages


def _body(inp: dict[str, Any]) -> dict[str, Any]:
    if not inp.get("model"):
        raise StepFailure("VALIDATION_ERROR", "llm.chat needs 'model'")
    body: dict[str, Any] = {"model": str(inp["model"]), "messages": _messages(inp)}
    for key, wire in (("temperature", "temperature"), ("maxTokens", "max_tokens"),
                      ("responseFormat", "response_format")):
        if inp.get(key) is not None:
            body[wire] = inp[key]
    return body


def _usage(data: dict[str, Any]) -> dict[str, Any]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return {"promptTokens": usage.get("prompt_tokens"), "completionTokens": usage.get("completion_tokens"),
            "totalTokens": usage.get("total_tokens")}


def _answer(response: httpx.Response, inp: dict[str, Any]) -> dict[str, Any]:
    """The step output from a 2xx answer; a malformed one is LLM_UNKNOWN_ERROR (retried optimistically)."""
    try:
        data = response.json()
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise StepFailure("LLM_UNKNOWN_ERROR", "the provider's answer is not an OpenAI chat completion",
                          provider_status=response.status_code, detail=response.text[:2048]) from None
    output = {"content": message.get("content"), "model": data.get("model") or inp.get("model"),
              "usage": _usage(data), "finishReason": choice.get("finish_reason")}
    if inp.get("includeRaw"):
        output["raw"] = data
    return output


@step_activity("llm.chat", map_llm_exception)
async def llm_chat(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Ask an OpenAI-compatible model for one chat completion (see the module docstring).

    Args:
        inp: ``baseUrl``, ``apiKey``, ``model``, ``messages`` or ``prompt``/``system``, ``temperature``,
            ``maxTokens``, ``responseFormat``, ``headers``, ``timeout``, ``includeRaw``.
        ctx: the call's context.

    Returns:
        ``{"content", "model", "usage", "finishReason", "raw"?}``, with a warning when cut at maxTokens.
    """
    body = _body(inp)
    base = str(inp.get("baseUrl") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    headers = {str(k): str(v) for k, v in (inp.get("headers") or {}).items()}
    if inp.get("apiKey"):
        headers["Authorization"] = f"Bearer {inp['apiKey']}"
    # Stay under the step timeout so a slow model reads LLM_TIMEOUT, not the generic TIMEOUT.
    timeout = min(float(inp.get("timeout") or ctx.timeout_s), ctx.timeout_s * 0.9)
    ctx.log(f"POST {base}/chat/completions model={body['model']} messages={len(body['messages'])}")
    # The base URL can come from the flow, so it passes the same SSRF guard as core.http
    # (a local model server must be listed in FLOWTIDE_HTTP_ALLOW).
    limit = int(ctx.limits.get("httpResponseBytes") or DEFAULT_LIMITS["httpResponseBytes"])
    # only encodings decoded within the limit, whatever the flow's own headers ask for
    headers = {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
    headers["Accept-Encoding"] = ACCEPT_ENCODING
    async with pooled_client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                             follow_redirects=False) as client, \
            client.stream("POST", f"{base}/chat/completions", json=body, headers=headers) as streamed:
        try:  # read within the limit: a provider's answer (or a gzip bomb) never fills the worker's memory
            data, _, truncated = await read_limited(streamed, limit)
        except InvalidBody as exc:
            raise StepFailure("LLM_UNKNOWN_ERROR", f"the provider's answer cannot be read: {exc}",
                              provider_status=streamed.status_code) from None
    if truncated:
        raise too_large(f"POST {base}/chat/completions", streamed.status_code, limit, None)
    response = as_read(streamed, data)
    response.raise_for_status()  # any non-2xx becomes the mapper's operational error
    output = _answer(response, inp)
    ctx.log(f"finish_reason={output['finishReason']} usage={output['usage']}")
    if output["finishReason"] == "content_filter":
        raise StepFailure("LLM_CONTENT_POLICY", "the provider's content filter stopped the answer",
                          type="operational", provider_status=response.status_code, output=output)
    warnings = []
    if output["finishReason"] == "length":
        warnings.append(StepFailure("LLM_OUTPUT_TRUNCATED", f"the answer stopped at the token limit "
                                    f"(maxTokens={inp.get('maxTokens')}); content is partial",
                                    type="operational", severity="warning"))
    return StepResult(output, warnings=warnings)
