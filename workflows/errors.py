"""The error taxonomy: every normalised code with its family, class and description.

Exception tree (all pure, importable inside the workflow sandbox)::

    FlowtideError                       base of everything the project raises on purpose
    +-- FlowValidationError             a flow document or a payload is invalid (carries every Problem)
    +-- TemplateError                   a template cannot be parsed or (strict mode) a path is missing
    +-- StepFailure                     a step failed; carries the fields of the error record

An error *record* is the one JSON shape every failure takes (docs/error-handling.md); ``contracts.error_record``
builds it.
Classes decide retries (see ``workflows.retry``): transient, rate-limit, permanent, auth, invalid-config, unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

ErrorClass = Literal["transient", "rate-limit", "permanent", "auth", "invalid-config", "unknown"]
ErrorType = Literal["execution", "operational"]
Severity = Literal["error", "warning"]

ERROR_CLASSES: tuple[ErrorClass, ...] = (
    "transient", "rate-limit", "permanent", "auth", "invalid-config", "unknown",
)


@dataclass(frozen=True)
class CodeInfo:
    """One row of the taxonomy."""

    code: str
    family: str
    cls: ErrorClass
    description: str


def _rows() -> list[CodeInfo]:
    t: list[tuple[str, str, ErrorClass, str]] = [
        # fixed codes
        ("UNKNOWN_ERROR", "Core", "unknown", "The step failed for a reason that has no specific code"),
        ("CANCELLED", "Core", "permanent", "The run or the step was cancelled"),
        ("TIMEOUT", "Core", "transient", "One attempt of the step exceeded its timeout"),
        ("RUN_LIMIT_REACHED", "Core", "permanent", "The step has run as many times as its runLimit allows"),
        ("STEP_BUDGET_EXCEEDED", "Core", "permanent", "The run executed more steps than settings.limits allow"),
        ("TEMPLATE_ERROR", "Core", "invalid-config", "A template could not be evaluated"),
        ("VALIDATION_ERROR", "Core", "invalid-config", "Data did not match the expected schema"),
        ("AUTH_MISSING", "Core", "auth", "A connection or secret the step needs is not configured"),
        ("AUTH_REAUTHORIZATION_REQUIRED", "Core", "auth",
         "The connection's token could not be refreshed (invalid_grant): reconnect it, then re-run"),
        ("OUTPUT_TOO_LARGE", "Core", "invalid-config", "The step output exceeds the output size limit"),
        ("WORK_BUDGET_EXCEEDED", "Core", "invalid-config",
         "The step's templates and conditions did more work than one step may (operations or characters built), "
         "or its JSON Schema check more evaluations than one check may"),
        ("VALUE_TOO_LARGE", "Core", "invalid-config",
         "A variable is larger than settings.limits.outputBytes, or the run's scope (variables and step "
         "outputs) would grow past its limit"),
        ("INPUT_TOO_LARGE", "Core", "invalid-config",
         "The step's rendered input is larger than one Temporal payload can carry"),
        ("SIGNAL_TIMEOUT", "Core", "permanent", "No signal arrived before the wait-for-signal timeout"),
        ("SUB_FLOW_FAILED", "Core", "permanent", "The child flow run failed"),
        ("LOOP_FAILURE_THRESHOLD", "Core", "permanent",
         "A for-each crossed its failurePolicy (maxFailures, maxFailureRatio or a stopOn code/class); the "
         "detail names the threshold and the failed items by code"),
        ("RETURN", "Core", "permanent", "Internal: a return step ended the run"),
        ("INTERNAL_ERROR", "Core", "permanent",
         "Flowtide itself failed on this step or run (a bug): the message names the exception; not retried"),
        ("CIRCUIT_OPEN", "Core", "transient",
         "The step's circuit breaker (per connection or host, shared by all runs) is open: the provider was not "
         "called; retried once the breaker's open time has passed"),
        ("MOCK_MISSING", "Core", "invalid-config",
         "`flowtide test`: the step would reach the outside world but the test case gives it no mock "
         "(add one under `mocks`, or run with --allow-network)"),
        # HTTP
        ("HTTP_CLIENT_ERROR", "HTTP", "permanent", "The server answered 4xx (other than 408/429)"),
        ("HTTP_UNAUTHORIZED", "HTTP", "auth", "The server answered 401 or 403"),
        ("HTTP_NOT_FOUND", "HTTP", "permanent", "The server answered 404"),
        ("HTTP_RATE_LIMITED", "HTTP", "rate-limit", "The server answered 429 Too Many Requests"),
        ("HTTP_SERVER_ERROR", "HTTP", "transient", "The server answered 5xx"),
        ("HTTP_TIMEOUT", "HTTP", "transient", "The request timed out (connect, read, write or pool)"),
        ("HTTP_CONNECTION_FAILED", "HTTP", "transient", "The connection could not be made or was lost"),
        ("HTTP_RESPONSE_TOO_LARGE", "HTTP", "invalid-config", "The response body exceeds the size limit"),
        ("HTTP_DESTINATION_BLOCKED", "HTTP", "invalid-config",
         "The destination is loopback, private, link-local or metadata and not allowed"),
        ("HTTP_INVALID_REQUEST", "HTTP", "invalid-config", "The request is malformed (URL, method, headers)"),
        ("HTTP_PROTOCOL_ERROR", "HTTP", "transient", "The server broke the HTTP protocol"),
        ("HTTP_TOO_MANY_REDIRECTS", "HTTP", "permanent", "Too many redirects"),
        ("HTTP_INVALID_RESPONSE", "HTTP", "permanent",
         "The response body cannot be decoded as asked (responseType json, corrupt compression)"),
        ("ECONNREFUSED", "HTTP", "transient", "Connection refused by the remote host"),
        ("ECONNRESET", "HTTP", "transient", "Connection reset by the remote host"),
        ("ETIMEDOUT", "HTTP", "transient", "Connecting timed out"),
        ("ENOTFOUND", "HTTP", "permanent", "The host name does not resolve"),
        ("EAI_AGAIN", "HTTP", "transient", "Temporary DNS failure"),
        # Code
        ("CODE_EXCEPTION", "Code", "unknown", "The script raised an exception"),
        ("CODE_SYNTAX_ERROR", "Code", "invalid-config", "The script does not compile"),
        ("CODE_RESULT_INVALID", "Code", "invalid-config", "The script returned a value that is not JSON"),
        ("CODE_LANGUAGE_UNSUPPORTED", "Code", "invalid-config", "The script language is not installed"),
        ("SUBPROCESS_TIMEOUT", "Code", "transient", "The script exceeded its time limit"),
        ("SUBPROCESS_OUT_OF_MEMORY", "Code", "permanent", "The script exceeded its memory limit"),
        ("SUBPROCESS_INVALID_INPUT", "Code", "invalid-config", "The script input could not be passed"),
        ("SUBPROCESS_CRASHED", "Code", "unknown", "The script process died without a result"),
        # File / storage
        ("FILE_NOT_FOUND", "File", "permanent", "The file does not exist"),
        ("FILE_ACCESS_DENIED", "File", "auth", "The file may not be read or written"),
        ("FILE_TOO_LARGE", "File", "invalid-config", "The file exceeds the size limit"),
        ("FILE_INVALID_PATH", "File", "invalid-config", "The path is outside the allowed roots or malformed"),
        ("FILE_ALREADY_EXISTS", "File", "permanent", "The file exists and the write mode is create"),
        ("FILE_INVALID_CONTENT", "File", "invalid-config",
         "The content does not match the encoding (text, base64, json)"),
        ("STORAGE_CONNECTION_FAILED", "File", "transient", "The storage service could not be reached"),
        ("STORAGE_TIMEOUT", "File", "transient", "The storage operation timed out"),
        ("STORAGE_RATE_LIMITED", "File", "rate-limit", "The storage service throttled the request"),
        ("STORAGE_UNKNOWN_ERROR", "File", "unknown", "The storage operation failed"),
        # Data store
        ("DATA_STORE_CONNECTION_FAILED", "Data Store", "transient", "The database could not be reached"),
        ("DATA_STORE_TIMEOUT", "Data Store", "transient", "The query timed out"),
        ("DATA_STORE_DEADLOCK", "Data Store", "transient", "The query was chosen as a deadlock victim or locked"),
        ("DATA_STORE_TABLE_NOT_FOUND", "Data Store", "permanent", "The table does not exist"),
        ("DATA_STORE_INVALID_QUERY", "Data Store", "invalid-config", "The query is malformed"),
        ("DATA_STORE_CONSTRAINT_VIOLATION", "Data Store", "permanent", "A constraint rejected the write"),
        ("DATA_STORE_RESULT_TOO_LARGE", "Data Store", "invalid-config",
         "The query returned more rows than the row limit"),
        ("DATA_STORE_AUTH_FAILED", "Data Store", "auth", "The database refused the credentials"),
        ("DATA_STORE_UNKNOWN_ERROR", "Data Store", "unknown", "The database operation failed"),
        # LLM
        ("LLM_TIMEOUT", "AI / LLM", "transient", "The model did not answer in time"),
        ("LLM_RATE_LIMIT", "AI / LLM", "rate-limit", "The model provider throttled the request"),
        ("LLM_CONTENT_POLICY", "AI / LLM", "permanent", "The provider refused the content"),
        ("LLM_INVALID_API_KEY", "AI / LLM", "auth", "The API key was refused"),
        ("LLM_CONTEXT_TOO_LONG", "AI / LLM", "invalid-config", "The prompt exceeds the model context"),
        ("LLM_SERVER_ERROR", "AI / LLM", "transient", "The provider answered 5xx"),
        ("LLM_CONNECTION_FAILED", "AI / LLM", "transient", "The provider could not be reached"),
        ("LLM_INVALID_REQUEST", "AI / LLM", "invalid-config", "The provider rejected the request"),
        ("LLM_OUTPUT_TRUNCATED", "AI / LLM", "permanent",
         "The answer stopped at maxTokens (finish reason length; warning)"),
        ("LLM_UNKNOWN_ERROR", "AI / LLM", "unknown", "The model call failed"),
        # Email
        ("SMTP_CONNECTION_FAILED", "Email", "transient", "The SMTP server could not be reached"),
        ("SMTP_AUTH_FAILED", "Email", "auth", "The SMTP server refused the credentials"),
        ("SMTP_INVALID_RECIPIENT", "Email", "permanent", "The SMTP server rejected a recipient"),
        ("SMTP_RATE_LIMITED", "Email", "rate-limit", "The SMTP server throttled the sender"),
        ("SMTP_TIMEOUT", "Email", "transient", "The SMTP conversation timed out"),
        ("SMTP_REJECTED", "Email", "permanent", "The SMTP server rejected the message"),
        ("SMTP_PARTIAL_DELIVERY", "Email", "permanent", "Some recipients were rejected (warning)"),
        ("SMTP_NOT_SUPPORTED", "Email", "invalid-config",
         "The SMTP server lacks a feature the step asked for (STARTTLS, AUTH)"),
        ("SMTP_UNKNOWN_ERROR", "Email", "unknown", "The SMTP conversation failed"),
    ]
    return [CodeInfo(c, f, k, d) for c, f, k, d in t]


TAXONOMY: dict[str, CodeInfo] = {row.code: row for row in _rows()}


def classify(code: str) -> ErrorClass:
    """The class of a code: the table first, then the seed's naming rules, else ``unknown``."""
    row = TAXONOMY.get(code)
    if row is not None:
        return row.cls
    if code.endswith("_RATE_LIMITED") or code.endswith("_RATE_LIMIT"):
        return "rate-limit"
    if code.endswith("_TIMEOUT") or code.endswith("_CONNECTION_FAILED"):
        return "transient"
    if code.endswith("_AUTH_FAILED"):
        return "auth"
    if "_INVALID_" in code or code.startswith("INVALID_") or code.endswith("_NOT_FOUND"):
        return "permanent"
    return "unknown"


def codes_of_class(*classes: ErrorClass) -> list[str]:
    """Every taxonomy code whose class is one of ``classes``, sorted."""
    return sorted(c.code for c in TAXONOMY.values() if c.cls in classes)


class FlowtideError(Exception):
    """Base of every error the project raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation finding, with its JSON path (``steps[3].input.url``)."""

    path: str
    message: str
    severity: Severity = "error"
    line: int | None = None  # where the path is in the document's text (1-based), when it came from text
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "message": self.message, "severity": self.severity}
        if self.line is not None:
            out["line"], out["column"] = self.line, self.column
        return out


class FlowValidationError(FlowtideError):
    """A flow document or a payload is invalid; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        errors = [p for p in problems if p.severity == "error"]
        head = f"{source}: " if source else ""
        lines = "; ".join(str(p) for p in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{head}{len(errors)} error(s): {lines}{more}")


class TemplateError(FlowtideError):
    """A template cannot be parsed or, in strict mode, names a missing path."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class LimitError(TemplateError):
    """Evaluating a step went past a limit of work or size; ``code`` is its taxonomy code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)



# The one error shape: step rows, ``$errors``, ``$meta.error``, the run's error. The
# functional form because one key, ``class`` (the taxonomy class of ``code``), is a Python keyword.
ErrorRecord = TypedDict("ErrorRecord", {
    "stepId": str | None,
    "stepType": str | None,
    "type": ErrorType,
    "code": str,
    "message": str,
    "severity": Severity,
    "retryable": bool,
    "isRetryable": bool,
    "providerStatus": int | None,
    "detail": str | None,
    "attempt": int,
    "class": str,
    "iteration": NotRequired[int],
    "problems": NotRequired[list[dict[str, str]]],
    "absorbed": NotRequired[bool],  # continueOnError or onError took it: the run goes on
})


@dataclass
class StepFailure(FlowtideError):  # noqa: N818 - the taxonomy's own name for a failed step
    """A step failed. Raised by step code and by family mappers; becomes an error record."""

    code: str
    message: str
    type: ErrorType = "execution"
    provider_status: int | None = None
    detail: str | None = None
    output: Any = None
    retry_after_s: float | None = None
    retryable: bool | None = None  # None: decided by the retry preset
    severity: Severity = "error"
    # What the engine learns besides the error itself (never sent anywhere as such):
    attempt: int = 1  # the attempt that failed (0: the step never ran, its run limit was reached)
    console: list[str] | None = None  # the failed attempt's console (from the activity boundary)
    record: ErrorRecord | None = None  # the boundary's error record, kept as it arrived
    exhausted: bool = False  # Temporal gave up: the retry policy's attempts are spent
    capped: bool = False  # the attempts were cut short by the step's run limit
    user_code: bool = False  # raised by a code step's own script (``$error``), not by Flowtide

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.code}: {self.message}")

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def wire_text(text: str) -> str:
    """``text`` as valid UTF-8 for a Temporal failure message (a protobuf string): lone surrogates, which
    JSON data may carry, are written as ``\\udXXX`` escapes instead of making the failure unsendable."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
