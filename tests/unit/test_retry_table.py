"""One test per row of docs/error-handling.md: family defaults, presets, and the always-rules."""

from __future__ import annotations

import pytest

from flowtide.workflows.errors import TAXONOMY, classify, codes_of_class
from flowtide.workflows.retry import effective, is_retryable, non_retryable_types, temporal_policy


@pytest.mark.parametrize(("family", "retries", "delay_ms"), [
    ("HTTP", 2, 1000), ("Code", 3, 1000), ("Email", 1, 2000), ("AI / LLM", 1, 3000), ("File", 2, 1000),
    ("Data Store", 1, 500)])
def test_family_defaults(family, retries, delay_ms):
    s = effective(family, None)
    assert (s.max_retries, s.delay_ms, s.backoff, s.mode) == (retries, delay_ms, 2.0, "smart")
    p = temporal_policy(s)
    assert p.maximum_attempts == retries + 1
    assert p.initial_interval.total_seconds() * 1000 == delay_ms
    assert p.backoff_coefficient == 2.0


def test_step_policy_overrides_flow_policy_overrides_family():
    s = effective("HTTP", {"maxRetries": 5, "mode": "aggressive"}, {"maxRetries": 1, "delayMs": 50})
    assert (s.max_retries, s.delay_ms, s.mode) == (5, 50, "aggressive")


def test_max_retries_zero_disables_retries():
    s = effective("HTTP", {"maxRetries": 0})
    assert temporal_policy(s).maximum_attempts == 1
    assert not is_retryable("HTTP_SERVER_ERROR", s)


@pytest.mark.parametrize(("code", "expected"), [
    ("HTTP_RATE_LIMITED", True), ("SMTP_RATE_LIMITED", True), ("LLM_RATE_LIMIT", True),
    ("HTTP_TIMEOUT", True), ("DATA_STORE_TIMEOUT", True), ("STORAGE_CONNECTION_FAILED", True),
    ("HTTP_SERVER_ERROR", True), ("UNKNOWN_ERROR", True), ("STORAGE_UNKNOWN_ERROR", True),
    ("SMTP_AUTH_FAILED", False), ("LLM_INVALID_API_KEY", False), ("FILE_NOT_FOUND", False),
    ("HTTP_CLIENT_ERROR", False), ("SMTP_INVALID_RECIPIENT", False), ("PARTNER_NOT_FOUND", False),
    ("ACME_RATE_LIMITED", True), ("ACME_TIMEOUT", True), ("ACME_AUTH_FAILED", False)])
def test_smart_preset(code, expected):
    assert is_retryable(code, effective("HTTP", None)) is expected


@pytest.mark.parametrize(("code", "expected"), [
    ("HTTP_CLIENT_ERROR", True), ("FILE_NOT_FOUND", True), ("HTTP_SERVER_ERROR", True),
    ("SMTP_AUTH_FAILED", False), ("LLM_INVALID_API_KEY", False), ("HTTP_RESPONSE_TOO_LARGE", False)])
def test_aggressive_preset(code, expected):
    assert is_retryable(code, effective("HTTP", {"mode": "aggressive"})) is expected


@pytest.mark.parametrize(("code", "expected"), [
    ("HTTP_RATE_LIMITED", True), ("LLM_RATE_LIMIT", True), ("STORAGE_RATE_LIMITED", True),
    ("HTTP_SERVER_ERROR", False), ("HTTP_TIMEOUT", False), ("UNKNOWN_ERROR", False)])
def test_rate_limits_only_preset(code, expected):
    assert is_retryable(code, effective("HTTP", {"mode": "rate-limits-only"})) is expected


def test_custom_preset_prefilled_with_permanent_codes():
    s = effective("Code", {"mode": "custom"})
    assert set(s.non_retryable_codes) == set(codes_of_class("permanent", "auth", "invalid-config"))
    assert is_retryable("HTTP_SERVER_ERROR", s)
    assert not is_retryable("FILE_NOT_FOUND", s)


def test_custom_preset_with_explicit_denylist_retries_user_codes():
    s = effective("Code", {"mode": "custom", "nonRetryableErrorCodes": ["INVALID_REQUEST", "PARTNER_REJECTED"]})
    assert is_retryable("RATE_LIMITED", s, user_code=True)
    assert is_retryable("PARTNER_SERVER_ERROR", s, user_code=True)
    assert not is_retryable("INVALID_REQUEST", s, user_code=True)
    assert not is_retryable("PARTNER_REJECTED", s, user_code=True)
    assert "INVALID_REQUEST" in non_retryable_types(s)


def test_code_step_error_not_retried_outside_custom_mode():
    assert not is_retryable("NETWORK_ERROR", effective("Code", None), user_code=True)
    assert not is_retryable("NETWORK_ERROR", effective("Code", {"mode": "aggressive"}), user_code=True)


@pytest.mark.parametrize("method", ["POST", "PATCH", "post"])
def test_post_patch_only_retried_on_429(method):
    s = effective("HTTP", None)
    assert not is_retryable("HTTP_SERVER_ERROR", s, method=method, provider_status=500)
    assert not is_retryable("HTTP_TIMEOUT", s, method=method)
    assert is_retryable("HTTP_RATE_LIMITED", s, method=method, provider_status=429)
    assert is_retryable("HTTP_SERVER_ERROR", s, method="PUT", provider_status=500)


def test_temporal_non_retryable_types_follow_the_preset():
    smart = non_retryable_types(effective("HTTP", None))
    assert "HTTP_CLIENT_ERROR" in smart and "HTTP_SERVER_ERROR" not in smart
    assert "PayloadsTooLarge" in smart
    rlo = non_retryable_types(effective("HTTP", {"mode": "rate-limits-only"}))
    assert "HTTP_SERVER_ERROR" in rlo and "HTTP_RATE_LIMITED" not in rlo


def test_run_limit_caps_attempts():
    assert temporal_policy(effective("HTTP", {"maxRetries": 5}), max_attempts_cap=2).maximum_attempts == 2


def test_every_code_has_a_class_and_description():
    for row in TAXONOMY.values():
        assert classify(row.code) == row.cls
        assert row.description
