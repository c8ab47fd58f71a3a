"""Both spellings of a step (``stepId``/``stepType``/``input`` and ``id``/``action``/``parameters``) into one ``Step``.

The builder reports every problem it meets (with its JSON path) and still builds as much of the step as it
can, so that later checks (routing targets, references) see the whole flow and nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from flowtide.workflows.errors import Problem
from flowtide.workflows.kinds import ALIASES, CONNECTION_KINDS, FOR_EACH, KINDS, canonical_kind
from flowtide.workflows.language.dsl import inputs as _dsl_inputs
from flowtide.workflows.language.dsl.models import CircuitBreaker, Condition, OnError, RetryPolicy, Step, StepInfo
from flowtide.workflows.language.dsl.raw import STEP_ID_RE
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.language.values import did_you_mean, short
from flowtide.workflows.retry import RETRY_MODES

MAX_STEPS = 5000
MAX_STEP_DEPTH = 32
STEP_KEYS: dict[str, str] = {  # written key -> canonical key
    "stepId": "id", "id": "id", "stepType": "kind", "action": "kind", "input": "input", "parameters": "input",
    "title": "title", "continueOnError": "continueOnError", "skipCondition": "skipCondition",
    "retryPolicy": "retryPolicy", "timeout": "timeout", "runLimit": "runLimit", "onError": "onError",
    "next": "next", "condition": "condition", "execution": "execution", "connection": "connection",
    "circuitBreaker": "circuitBreaker",
}
RESERVED_IDS = frozenset({"initial", "vars", "secrets", "true", "false", "null", "nil", "stop-workflow",
                          "continue-workflow"})
KIND_NAMES = sorted(set(KINDS) | set(ALIASES))
# Aliases of core.code that name the language: the step runs in it unless its input says otherwise.
LANGUAGE_OF_ALIAS = {"code::javascript": "javascript", "code::python": "python"}
HINTS = {
    "timeout": "must be a positive number of seconds",
    "runLimit": "must be a whole number >= -1 (-1 = unlimited)",
    "maxRetries": "must be a whole number from 0 to 100",
    "delayMs": "must be a number of milliseconds from 0 to 86400000",
    "maxDelayMs": "must be a number of milliseconds >= 0",
    "backoffMultiplier": "must be a number from 1 to 100",
    "mode": f"must be one of {', '.join(RETRY_MODES)}",
    "nonRetryableErrorCodes": "must be a list of error codes (strings)",
    "action": "must be one of stop-workflow, continue-workflow, retry-step, retry-workflow",
    "next": "must be a step id or a list of step ids",
    "then": "must be a step id, a list of step ids, or stop-workflow / continue-workflow",
    "else": "must be a step id, a list of step ids, or stop-workflow / continue-workflow",
    "execution": "must be remote or local",
    "connection": "must be the name of a connection (flowtide connections list)",
    "circuitBreaker": "must be an object {failureThreshold, windowSeconds, openSeconds}",
    "failureThreshold": "must be a whole number from 1 to 10000",
    "windowSeconds": "must be a number of seconds above 0, at most 86400",
    "openSeconds": "must be a number of seconds above 0, at most 86400",
    "continueOnError": "must be true or false",
    "strictTemplates": "must be true or false",
    "onError": "must be an object {action, maxRetries, next} or an action name",
    "retryPolicy": "must be an object {maxRetries, delayMs, backoffMultiplier, maxDelayMs, mode, "
                   "nonRetryableErrorCodes}",
    "condition": "must be an object {if, then, else}",
    "limits": "must be an object {outputBytes, httpResponseBytes, maxStepExecutions, loopBatchSize, "
              "continueAsNewEvents}",
    "outputBytes": "must be a whole number of bytes from 1024 to 100000000",
    "httpResponseBytes": "must be a whole number of bytes from 1024 to 100000000",
    "maxStepExecutions": "must be a whole number from 1 to 10000000, or -1 (no limit)",
    "continueAsNewEvents": "must be a whole number of history events from 10 to 40000",
    "loopBatchSize": "must be a whole number from 1 to 10000",
}
ChildParser = Callable[[Any, str, int, str], dict[str, Any] | None]


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as written in documents."""
    return [f.alias or name for name, f in model.model_fields.items()]


def _error_message(err: Any, loc: list[str | int]) -> str:
    keys = [x for x in loc if isinstance(x, str)]
    name = keys[-1] if keys else ""
    if err["type"] == "missing":
        return f"missing '{name}'"
    hint = HINTS.get(name)
    return f"{hint or err['msg']} (got {short(err.get('input'))})"


def _document_loc(data: Any, loc: list[Any]) -> list[str | int]:
    """The part of a pydantic error location that names keys and indexes of ``data`` (no union member tags)."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        key_of_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        index_of_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if key_of_dict or index_of_list:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and i == len(loc) - 1:
            out.append(part)  # a missing key
            break
        else:
            continue
        out.append(part)
    return out


def known_keys(value: dict[str, Any], allowed: Collection[str], path: str, problems: list[Problem]
               ) -> dict[str, Any]:
    """``value`` without the keys not in ``allowed``; each dropped key is an error with a did-you-mean hint."""
    out = {}
    for key, item in value.items():
        if key in allowed:
            out[key] = item
        else:
            problems.append(Problem(join_path(path, key), f"unknown key '{key[:60]}'{did_you_mean(key, allowed)}"))
    return out


def validate_model(model: type[BaseModel], data: dict[str, Any], path: str, written: dict[str, str],
                   problems: list[Problem]) -> Any:
    """``model.model_validate(data)``; each pydantic error becomes a Problem, the offending keys are dropped."""
    start = len(problems)
    for _ in range(2):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = set()
            for err in exc.errors():
                loc = _document_loc(data, list(err["loc"]))
                where = path
                for i, part in enumerate(loc):
                    where = join_path(where, written.get(str(part), str(part)) if i == 0 else part)
                if not any(p.path == where for p in problems[start:]):  # a union reports one error per member
                    problems.append(Problem(where, _error_message(err, loc)))
                bad.add(loc[0] if loc else "")
            data = {k: v for k, v in data.items() if k not in bad}
    return model.model_validate(data)


@dataclass
class StepBuilder:
    """Builds the steps of one flow; ``counter`` is shared with inline sub-flows (one cap per document)."""

    problems: list[Problem]
    counter: list[int]
    child_parser: ChildParser
    ids: dict[str, str] = field(default_factory=dict)
    info: dict[int, StepInfo] = field(default_factory=dict)

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def steps(self, raw: Any, path: str, depth: int, *, allow_empty: bool) -> list[Step]:
        """Build a list of steps (``steps``, ``then``, ``else``)."""
        if not isinstance(raw, list):
            self.error(path, f"must be a list of steps (got {short(raw)})")
            return []
        if not raw and not allow_empty:
            self.error(path, "must list at least one step")
        if depth > MAX_STEP_DEPTH:
            self.error(path, f"steps nest deeper than {MAX_STEP_DEPTH} levels")
            return []
        out: list[Step] = []
        for i, item in enumerate(raw):
            self.counter[0] += 1
            if self.counter[0] > MAX_STEPS:
                if self.counter[0] == MAX_STEPS + 1:
                    self.error(join_path(path, i), f"the flow has more than {MAX_STEPS} steps")
                return out
            step = self.step(item, join_path(path, i), depth)
            if step is not None:
                out.append(step)
        return out

    def step(self, raw: Any, path: str, depth: int) -> Step | None:
        """Build one step; None when it is not even an object."""
        if not isinstance(raw, dict):
            self.error(path, f"a step must be an object with stepId and stepType (got {short(raw)})")
            return None
        canon, written = self._fields(raw, path)
        info = StepInfo(path, written)
        sid = self._step_id(canon, info)
        kind = self._kind(canon, info)
        inp = canon.get("input")
        if inp is None:
            inp = {}
        elif not isinstance(inp, dict):
            self.error(info.key_path("input"), f"must be an object (got {short(inp)})")
            inp = {}
        ipath = info.key_path("input")
        inp, blocks = self._blocks(kind, dict(inp), ipath, depth, bool(canon.get("next")))
        alias = canon.get("kind")
        if isinstance(alias, str) and alias in LANGUAGE_OF_ALIAS and "language" not in inp:
            inp["language"] = LANGUAGE_OF_ALIAS[alias]  # `code::javascript` says which language
        inp = _dsl_inputs.check_input(kind, sid, inp, ipath if "input" in canon else info.path, depth,
                                      self.problems, self.child_parser)
        step = self._model(sid, kind, canon, inp, info)
        step.blocks = blocks
        self.info[id(step)] = info
        return step

    def _fields(self, raw: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, str]]:
        canon: dict[str, Any] = {}
        written: dict[str, str] = {}
        for key, value in raw.items():
            name = STEP_KEYS.get(key)
            if name is None:
                self.error(join_path(path, key), f"unknown key '{key[:60]}'{did_you_mean(key, STEP_KEYS)}")
            elif name in written:
                self.error(join_path(path, key), f"'{key}' and '{written[name]}' are two spellings of one key: "
                                                 "keep one")
            else:
                canon[name], written[name] = value, key
        return canon, written

    def _step_id(self, canon: dict[str, Any], info: StepInfo) -> str:
        sid = canon.get("id")
        where = info.key_path("id")
        if sid is None:
            self.error(info.path, "missing 'stepId' (or 'id'): every step needs a unique id such as fetch-customer")
            return f"?{info.path}"
        if not isinstance(sid, str):
            self.error(where, f"a step id must be a string (got {short(sid)})")
            return f"?{info.path}"
        if not STEP_ID_RE.fullmatch(sid):
            why = ("'$' is reserved for built-in names ($errors, $item, $meta...)" if "$" in sid else
                   "use letters, digits, '-' and '_', starting with a letter (at most 128 characters)")
            self.error(where, f"'{sid[:40]}' is not a valid step id: {why}")
        elif sid in RESERVED_IDS:
            self.error(where, f"'{sid}' is a reserved name and cannot be a step id")
        if sid in self.ids:
            self.error(where, f"duplicate step id '{sid}' (first used at {self.ids[sid]})")
        else:
            self.ids[sid] = info.path
        return sid

    def _kind(self, canon: dict[str, Any], info: StepInfo) -> str | None:
        raw = canon.get("kind")
        if raw is None:
            self.error(info.path, "missing 'stepType' (or 'action'), e.g. core.http")
            return None
        if not isinstance(raw, str):
            self.error(info.key_path("kind"), f"a step kind must be a string (got {short(raw)})")
            return None
        kind = canonical_kind(raw)
        if kind is None:
            self.error(info.key_path("kind"), f"unknown step kind '{raw[:60]}'{did_you_mean(raw, KIND_NAMES)}")
        return kind

    def _blocks(self, kind: str | None, inp: dict[str, Any], ipath: str, depth: int, has_next: bool
                ) -> tuple[dict[str, Any], dict[str, list[Step]]]:
        blocks: dict[str, list[Step]] = {}
        if kind is None:
            return inp, blocks
        for name in KINDS[kind].blocks:
            if kind == "core.if" or name in inp:
                raw = inp.pop(name, None)
                blocks[name] = self.steps([] if raw is None else raw, join_path(ipath, name), depth + 1,
                                          allow_empty=True)
        if kind == FOR_EACH and "steps" not in blocks and not has_next:
            self.error(ipath, "core.for-each needs 'steps' (the loop body) or, in graph style, 'next'")
        return inp, blocks

    def _model(self, sid: str, kind: str | None, canon: dict[str, Any], inp: dict[str, Any], info: StepInfo
               ) -> Step:
        title = canon.get("title")
        if title is not None and not isinstance(title, str):
            self.error(info.key_path("title"), f"must be a string (got {short(title)})")
            title = None
        data: dict[str, Any] = {"id": sid, "kind": kind or "?", "title": title or sid, "input": inp}
        for name in ("continueOnError", "skipCondition", "retryPolicy", "timeout", "runLimit", "onError", "next",
                     "condition", "execution", "connection", "circuitBreaker"):
            if name in canon:
                data[name] = canon[name]
        if isinstance(data.get("onError"), str):
            data["onError"] = {"action": data["onError"]}
        for name, model in (("retryPolicy", RetryPolicy), ("onError", OnError), ("condition", Condition),
                            ("circuitBreaker", CircuitBreaker)):
            if isinstance(data.get(name), dict):
                data[name] = known_keys(data[name], model_keys(model), info.key_path(name), self.problems)
        step: Step = validate_model(Step, data, info.path, info.written, self.problems)
        if step.connection is not None and kind is not None and kind not in CONNECTION_KINDS:
            self.error(info.key_path("connection"), f"a {kind} step takes no connection (only "
                                                    f"{', '.join(sorted(CONNECTION_KINDS))} do)")
        _dsl_inputs.check_step_conditions(step, info, self.problems)
        return step

