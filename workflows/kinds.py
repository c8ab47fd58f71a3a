"""The step kinds, each declared once: name, aliases, family, where it runs, connection, inputs, error codes.

Everything else about a kind is derived from ``KINDS``: the validator's required and known input keys
(``workflows.language.dsl.inputs``), the per-kind input part of the editors' JSON Schema, ``ALIASES``,
``CONNECTION_KINDS`` and ``activity_kinds()``. ``tests/unit/test_kinds_declared.py`` holds the rest to
it: one registered activity per activity kind and none other, an in-workflow implementation per workflow
kind, a ``retry.FAMILY_DEFAULTS`` row per family, only ``errors.TAXONOMY`` codes, and the input tables of
``docs/steps.md``. The task a step hands its activity is ``contracts.ActivityTask``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Where a kind runs: inside the workflow (pure and control kinds), as a Temporal activity (the outside
# world), or as a child workflow (core.sub-flow).
Runs = Literal["workflow", "activity", "child"]


@dataclass(frozen=True)
class Inputs:
    """A kind's input model: the keys it reads, which are required, and whether other keys are accepted."""

    keys: tuple[tuple[str, str], ...] = ()  # (key, one-line description), in the order the docs list them
    required: tuple[tuple[str, ...], ...] = ()  # each group: at least one of these keys must be set
    other_keys: bool = True  # False: `validate` reports any key not in ``keys``

    @property
    def names(self) -> frozenset[str]:
        """The declared keys."""
        return frozenset(k for k, _ in self.keys)


def inputs(described: dict[str, str], *required: tuple[str, ...], other_keys: bool = True) -> Inputs:
    """An ``Inputs`` from ``{key: description}`` and the required groups."""
    return Inputs(tuple(described.items()), required, other_keys)


def codes(text: str) -> tuple[str, ...]:
    """Taxonomy codes written as one space-separated string."""
    return tuple(text.split())


@dataclass(frozen=True)
class Kind:
    """One step kind.

    ``errors`` are the taxonomy codes the kind itself raises; ``ENGINE_CODES``, which the engine or the
    activity boundary may give a step of any kind, are not repeated per kind.
    """

    name: str
    family: str  # its retry defaults: retry.FAMILY_DEFAULTS[family]
    runs: Runs
    inputs: Inputs = Inputs()
    errors: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other spellings (`ns::name` for the first dot is always accepted)
    connection: bool = False  # the step may name a connection (`connection: NAME`)
    side_effects: bool = False  # for `rerun --dry-run`: repeating it changes the outside world
    default_timeout_s: float = 30.0
    blocks: tuple[str, ...] = ()  # input keys that hold nested step lists
    # a re-run may take this step's output from the old run; False: it always runs again (it only routes
    # or sets state that later steps read, so taking its output over would skip that effect)
    reusable: bool = True
    files: bool = False  # it opens files under FLOWTIDE_FILE_ROOTS: the task names the run's project

    @property
    def pure(self) -> bool:
        """Runs inside the workflow (or as its child), not as an activity."""
        return self.runs != "activity"


# Codes of no kind in particular: the engine's (budgets, templates, payload sizes, cancellation, its own bugs)
# and the activity boundary's (attempt timeout, output limit, missing secret or connection, circuit breaker,
# a step `flowtide test` has no mock for).
ENGINE_CODES = codes("UNKNOWN_ERROR CANCELLED TIMEOUT RUN_LIMIT_REACHED STEP_BUDGET_EXCEEDED TEMPLATE_ERROR "
                     "OUTPUT_TOO_LARGE INPUT_TOO_LARGE INTERNAL_ERROR AUTH_MISSING CIRCUIT_OPEN "
                     "WORK_BUDGET_EXCEEDED VALUE_TOO_LARGE VALIDATION_ERROR MOCK_MISSING")

_ENCODING = "text (default), base64 or json"

FOR_EACH = "core.for-each"  # the loop kind, named in code by this constant (loops, rerun of items, the parser)

_DECLARED = [
    Kind("core.http", "HTTP", "activity", connection=True, aliases=("http.request", "http::request", "core::http"),
         inputs=inputs({
             "url": "the absolute http(s) URL", "method": "GET (default), POST, PUT, PATCH, DELETE, ...",
             "headers": "request headers", "query": "query parameters (a value or a list of values)",
             "body": "the body: text, or JSON for a JSON body", "json": "a JSON body",
             "form": "a form-encoded body", "auth": "{type: bearer, token} or {type: basic, username, password}",
             "timeout": "seconds per connect, read and write", "followRedirects": "follow up to 10 redirects "
             "(default true)", "responseType": "auto (default), json, text or binary",
             "idempotencyKey": "the Idempotency-Key of POST/PATCH: a string, or false for none",
             "okStatuses": "statuses of 400 and more that are not errors"}, ("url",)),
         errors=codes("HTTP_CLIENT_ERROR HTTP_UNAUTHORIZED HTTP_RATE_LIMITED HTTP_SERVER_ERROR HTTP_TIMEOUT "
                      "HTTP_CONNECTION_FAILED HTTP_RESPONSE_TOO_LARGE HTTP_DESTINATION_BLOCKED HTTP_INVALID_REQUEST "
                      "HTTP_PROTOCOL_ERROR HTTP_TOO_MANY_REDIRECTS HTTP_INVALID_RESPONSE ECONNREFUSED ECONNRESET "
                      "ETIMEDOUT ENOTFOUND EAI_AGAIN AUTH_REAUTHORIZATION_REQUIRED VALIDATION_ERROR")),
    Kind("core.code", "Code", "activity", side_effects=True, aliases=("code::python", "code::javascript"),
         inputs=inputs({
             "script": "the script's source", "language": "python (default) or javascript",
             "env": "names of worker secrets or variables the script may read",
             "allowNetwork": "let the script open connections (default false)",
             "memoryMb": "the script's memory limit (default 256)"}, ("script",)),
         errors=codes("CODE_EXCEPTION CODE_SYNTAX_ERROR CODE_RESULT_INVALID CODE_LANGUAGE_UNSUPPORTED "
                      "SUBPROCESS_TIMEOUT SUBPROCESS_OUT_OF_MEMORY SUBPROCESS_INVALID_INPUT SUBPROCESS_CRASHED "
                      "VALIDATION_ERROR")),
    Kind("core.if", "Core", "workflow", blocks=("then", "else"), aliases=("logic::if",), reusable=False,
         inputs=inputs({"condition": "a JsonLogic object or an expression string",
                        "then": "the steps run when the condition holds",
                        "else": "the steps run when it does not"}, ("condition",), other_keys=False)),
    Kind(FOR_EACH, "Core", "workflow", blocks=("steps",), aliases=("logic::loop",),
         inputs=inputs({"items": "the list to run the steps for (or a number of items)",
                        "concurrency": "iterations at a time: a number or {max, adaptive}",
                        "continueOnError": "go on with the other items when one fails",
                        "steps": "the steps run once per item", "failurePolicy": "{maxFailures, "
                        "maxFailureRatio, stopOn}: when failed items stop the loop"}, ("items",), other_keys=False),
         errors=codes("LOOP_FAILURE_THRESHOLD VALIDATION_ERROR")),
    # every key of its input becomes vars.<key>
    Kind("core.set-variable", "Core", "workflow", aliases=("variable::set",), reusable=False),
    Kind("core.return", "Core", "workflow", aliases=("logic::return",), reusable=False,
         inputs=inputs({"output": "the run's output", "webhookResponse": "the answer to the webhook caller"},
                       other_keys=False)),
    Kind("core.delay", "Core", "workflow", aliases=("logic::delay",),
         inputs=inputs({"seconds": "how long to wait", "until": "an ISO 8601 instant to wait for"},
                       ("seconds", "until"), other_keys=False),
         errors=codes("VALIDATION_ERROR")),
    Kind("core.wait-for-signal", "Core", "workflow", aliases=("logic::wait",),
         inputs=inputs({"signal": "the signal's name", "name": "the same as signal",
                        "timeout": "seconds to wait at most (default: no limit)"}, ("signal", "name"),
                       other_keys=False),
         errors=codes("SIGNAL_TIMEOUT VALIDATION_ERROR")),
    Kind("core.validate", "Core", "workflow", aliases=("template::validate",),
         inputs=inputs({"data": "the value to check", "schema": "a JSON Schema",
                        "failOnInvalid": "fail the step when the data does not match (default false)"},
                       ("schema",), other_keys=False),
         errors=codes("VALIDATION_ERROR")),
    Kind("core.sub-flow", "Core", "child", side_effects=True, aliases=("flow::sub-flow",),
         inputs=inputs({"flow": "an inline flow document", "flowFile": "the path of a flow file",
                        "input": "the child run's input"}, ("flow", "flowFile"), other_keys=False),
         errors=codes("SUB_FLOW_FAILED")),
    Kind("email.send", "Email", "activity", connection=True, side_effects=True, aliases=("email::send",),
         inputs=inputs({
             "host": "SMTP server", "port": "SMTP port", "username": "AUTH user", "password": "AUTH password",
             "tls": "implicit TLS", "starttls": "true: require STARTTLS, false: never, null: when offered",
             "validateCerts": "verify the server certificate", "from": "the sender",
             "to": "recipients", "cc": "copy recipients", "bcc": "hidden recipients",
             "replyTo": "the Reply-To address(es)", "subject": "the subject", "text": "the plain-text body",
             "html": "the HTML body", "headers": "extra headers", "messageId": "the Message-ID",
             "timeout": "seconds per SMTP command"}),
         errors=codes("SMTP_CONNECTION_FAILED SMTP_AUTH_FAILED SMTP_INVALID_RECIPIENT SMTP_RATE_LIMITED "
                      "SMTP_TIMEOUT SMTP_REJECTED SMTP_PARTIAL_DELIVERY SMTP_NOT_SUPPORTED SMTP_UNKNOWN_ERROR "
                      "HTTP_DESTINATION_BLOCKED VALIDATION_ERROR")),
    Kind("file.read", "File", "activity", aliases=("file::read",), files=True,
         inputs=inputs({"path": "the file, under FLOWTIDE_FILE_ROOTS", "encoding": _ENCODING,
                        "charset": "the text charset (default utf-8)", "maxBytes": "the size limit"}),
         errors=codes("FILE_NOT_FOUND FILE_ACCESS_DENIED FILE_TOO_LARGE FILE_INVALID_PATH FILE_INVALID_CONTENT "
                      "STORAGE_CONNECTION_FAILED STORAGE_TIMEOUT STORAGE_UNKNOWN_ERROR VALIDATION_ERROR")),
    Kind("file.write", "File", "activity", side_effects=True, aliases=("file::write",), files=True,
         inputs=inputs({"path": "the file, under FLOWTIDE_FILE_ROOTS", "content": "what to write",
                        "encoding": _ENCODING, "charset": "the text charset (default utf-8)",
                        "mode": "overwrite (default), append or create", "createDirs": "create missing "
                        "directories (default false)", "maxBytes": "the size limit", "indent": "JSON indent"}),
         errors=codes("FILE_NOT_FOUND FILE_ACCESS_DENIED FILE_TOO_LARGE FILE_INVALID_PATH FILE_INVALID_CONTENT "
                      "FILE_ALREADY_EXISTS STORAGE_CONNECTION_FAILED STORAGE_TIMEOUT STORAGE_UNKNOWN_ERROR "
                      "VALIDATION_ERROR")),
    Kind("datastore.query", "Data Store", "activity", connection=True, side_effects=True, files=True,
         aliases=("datastore::query",),
         inputs=inputs({
             "connection": "a sqlite:/// or postgresql:// URL", "path": "a SQLite file, instead of connection",
             "sql": "one statement", "query": "the same as sql", "params": "the bound parameters",
             "maxRows": "the row limit", "timeout": "the statement timeout in seconds",
             "readOnly": "a read-only transaction", "create": "SQLite: create the file when missing"}),
         errors=codes("DATA_STORE_CONNECTION_FAILED DATA_STORE_TIMEOUT DATA_STORE_DEADLOCK DATA_STORE_TABLE_NOT_FOUND "
                      "DATA_STORE_INVALID_QUERY DATA_STORE_CONSTRAINT_VIOLATION DATA_STORE_RESULT_TOO_LARGE "
                      "DATA_STORE_AUTH_FAILED DATA_STORE_UNKNOWN_ERROR FILE_INVALID_PATH HTTP_DESTINATION_BLOCKED "
                      "VALIDATION_ERROR")),
    Kind("llm.chat", "AI / LLM", "activity", connection=True, default_timeout_s=120.0, aliases=("llm::chat",),
         inputs=inputs({
             "baseUrl": "the OpenAI-compatible API's base URL", "apiKey": "the API key",
             "model": "the model's name", "messages": "the conversation: [{role, content}]",
             "prompt": "a one-turn user message, instead of messages", "system": "the system message of prompt",
             "temperature": "sampling temperature", "maxTokens": "the answer's token limit",
             "responseFormat": "the provider's response_format", "headers": "extra request headers",
             "timeout": "seconds for the call (at most 90 % of the step timeout)",
             "includeRaw": "add the provider's full answer as raw"}),
         errors=codes("LLM_TIMEOUT LLM_RATE_LIMIT LLM_CONTENT_POLICY LLM_INVALID_API_KEY LLM_CONTEXT_TOO_LONG "
                      "LLM_SERVER_ERROR LLM_CONNECTION_FAILED LLM_INVALID_REQUEST LLM_OUTPUT_TRUNCATED "
                      "LLM_UNKNOWN_ERROR HTTP_DESTINATION_BLOCKED HTTP_RESPONSE_TOO_LARGE "
                      "AUTH_REAUTHORIZATION_REQUIRED VALIDATION_ERROR")),
    Kind("data.pick", "Core", "workflow", inputs=inputs({"data": "the value to pick from",
                                                         "paths": "{name: path} of the values to pick"}),
         errors=codes("VALIDATION_ERROR")),
    Kind("data.merge", "Core", "workflow", inputs=inputs({"objects": "the objects, later keys win"})),
    Kind("crypto.hash", "Core", "workflow",
         inputs=inputs({"algorithm": "the hash algorithm", "data": "the value to hash",
                        "encoding": "hex (default) or base64"}),
         errors=codes("VALIDATION_ERROR")),
    Kind("crypto.hmac", "Core", "workflow",
         inputs=inputs({"algorithm": "the hash algorithm", "key": "the key (not a secret)",
                        "data": "the value to sign", "encoding": "hex (default) or base64"}),
         errors=codes("VALIDATION_ERROR")),
    Kind("datetime.format", "Core", "workflow",
         inputs=inputs({"value": "an ISO date or epoch seconds (default: now)",
                        "format": "a strftime format"}),
         errors=codes("VALIDATION_ERROR")),
    Kind("datetime.now", "Core", "workflow"),
]

KINDS: dict[str, Kind] = {k.name: k for k in _DECLARED}
ALIASES: dict[str, str] = {alias: k.name for k in _DECLARED for alias in k.aliases}
CONNECTION_KINDS = frozenset(k.name for k in _DECLARED if k.connection)  # `connection: NAME`


def canonical_kind(name: str) -> str | None:
    """The canonical kind for ``name`` (an alias, ``ns::name`` or ``ns.name`` spelling), or None."""
    if name in KINDS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    dotted = name.replace("::", ".")
    if dotted in KINDS:
        return dotted
    return None


# Kinds a re-run always runs again instead of taking their output over (read by the engine and `rerun`)
NOT_REUSABLE = frozenset(k.name for k in KINDS.values() if not k.reusable)


def activity_kinds() -> list[str]:
    """Kinds that run as Temporal activities (one activity type each)."""
    return sorted(k.name for k in KINDS.values() if k.runs == "activity")

