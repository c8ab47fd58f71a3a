"""Loop policies: failure thresholds (``failurePolicy``) and adaptive concurrency (``concurrency.adaptive``).

Both are pure and deterministic. A ``FailurePolicy`` decides, after each failed item, whether the loop must
stop taking new items; counts are of the whole loop (batched loops pass the earlier batches' counts on).
``Throttle`` is an AIMD controller: it starts at one item and adds ``1/limit`` per success (one more item
per round of ``limit`` items) until the first rate-limited iteration; that one halves the concurrency (once
per round: items in flight at the last cut do not cut again) and from then on each success adds
``1/(2*limit)``: one more item every two rounds without a rate limit. (TCP's doubling slow start was
measured to burst far past a limit before the first 429 reaches the loop, which only learns of it when the
throttled item ends.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowtide.workflows.errors import ERROR_CLASSES, TAXONOMY, StepFailure
from flowtide.workflows.language.values import did_you_mean

if TYPE_CHECKING:
    from flowtide.workflows.contracts import ErrorRecord

KNOWN = sorted(set(ERROR_CLASSES) | set(TAXONOMY))
MAX_TRACE = 200  # concurrency changes kept in the loop record; the rest are counted


@dataclass
class FailurePolicy:
    """``failurePolicy``: stop at more than ``max_failures`` failures, more than ``max_ratio`` of all items
    failed, or the first failure whose code or class is in ``stop_on``."""

    max_failures: int | None = None
    max_ratio: float | None = None
    stop_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"maxFailures": self.max_failures, "maxFailureRatio": self.max_ratio, "stopOn": list(self.stop_on)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> FailurePolicy:
        """The policy ``to_dict`` wrote (a loop batch reads its parent's)."""
        return FailurePolicy(d["maxFailures"], d["maxFailureRatio"], tuple(d["stopOn"]))

    def crossed(self, failed: int, total: int, record: ErrorRecord) -> str | None:
        """The threshold the latest failure (``record``, making ``failed`` in all) crosses, or None."""
        code, cls = record.get("code"), record.get("class")
        if code in self.stop_on or cls in self.stop_on:
            return f"stopOn {code if code in self.stop_on else cls}"
        if self.max_failures is not None and failed > self.max_failures:
            return f"maxFailures {self.max_failures}"
        if self.max_ratio is not None and failed > self.max_ratio * total:
            return f"maxFailureRatio {self.max_ratio:g}"
        return None


def _bad(path: str, message: str) -> StepFailure:
    return StepFailure("VALIDATION_ERROR", f"for-each '{path}' {message}", retryable=False)


def failure_policy(value: Any) -> FailurePolicy | None:
    """The rendered ``failurePolicy`` as a ``FailurePolicy``; None when not set.

    Raises:
        StepFailure: VALIDATION_ERROR for a value of the wrong shape.
    """
    if value is None:
        return None
    problems = policy_problems(value)
    if problems:
        raise _bad("failurePolicy" + problems[0][0], problems[0][1])
    ratio = value.get("maxFailureRatio")
    return FailurePolicy(max_failures=value.get("maxFailures"), max_ratio=None if ratio is None else float(ratio),
                         stop_on=tuple(value.get("stopOn") or ()))


def policy_problems(value: Any) -> list[tuple[str, str]]:
    """``(path below failurePolicy, message)`` for each bad part of a ``failurePolicy`` value."""
    if not isinstance(value, dict):
        return [("", "must be an object {maxFailures, maxFailureRatio, stopOn}")]
    out = [(f".{k}", "is not a failurePolicy key (maxFailures, maxFailureRatio, stopOn)")
           for k in value if k not in ("maxFailures", "maxFailureRatio", "stopOn")]
    n = value.get("maxFailures")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        out.append((".maxFailures", f"must be a whole number >= 0, got {n!r:.60}"))
    r = value.get("maxFailureRatio")
    if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r <= 1):
        out.append((".maxFailureRatio", f"must be a number from 0 to 1, got {r!r:.60}"))
    stop = value.get("stopOn")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        out.append((".stopOn", "must be a list of error codes or classes (" + ", ".join(ERROR_CLASSES) + ")"))
    return out


def unknown_stop_codes(value: Any) -> list[tuple[str, str]]:
    """``(path, message)`` for ``stopOn`` entries that are neither a class nor a taxonomy code: a typo would
    never match (a code step's own codes are allowed, hence a warning)."""
    stop = value.get("stopOn") if isinstance(value, dict) else None
    if not isinstance(stop, list):
        return []
    return [(f".stopOn[{i}]", f"'{s[:60]}' is neither an error class nor a known code{did_you_mean(s, KNOWN)}")
            for i, s in enumerate(stop) if isinstance(s, str) and s not in KNOWN and "{{" not in s]


def concurrency_problems(value: Any) -> list[tuple[str, str]]:
    """``(path below concurrency, message)`` for a bad object form ``{max, adaptive}``."""
    if not isinstance(value, dict):
        return []
    out = [(f".{k}", "is not a concurrency key (max, adaptive)") for k in value if k not in ("max", "adaptive")]
    m = value.get("max", 1)
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        out.append((".max", f"must be a whole number >= 1, got {m!r:.60}"))
    if not isinstance(value.get("adaptive", False), bool):
        out.append((".adaptive", "must be true or false"))
    return out


@dataclass
class Throttle:
    """AIMD concurrency for an adaptive loop; ``trace`` lists ``{item, concurrency}`` at each change."""

    ceiling: int
    limit: float = 1.0
    cut_at: int = -1  # items started before this one were already in flight at the last cut
    trace: list[dict[str, int]] = field(default_factory=list)
    trace_omitted: int = 0
    slow_start: bool = True  # until the first rate limit: grow one item per round, then per two rounds

    @property
    def current(self) -> int:
        """The number of items that may run at once now."""
        return max(1, min(self.ceiling, int(self.limit)))

    def after(self, index: int, throttled: bool, started: int) -> None:
        """Adjust after item ``index`` finished; ``started`` is how many items have been started."""
        before = self.current
        if throttled:
            if index < self.cut_at:
                return  # in flight when the last cut was made: the same burst
            self.limit = max(1.0, self.limit / 2)
            self.cut_at = started
            self.slow_start = False
        else:
            rounds = 1 if self.slow_start else 2
            self.limit = min(float(self.ceiling), self.limit + 1 / (rounds * max(1.0, self.limit)))
        if self.current != before:
            self.note(index)

    def note(self, index: int) -> None:
        """Record the current concurrency at item ``index`` (bounded)."""
        if len(self.trace) < MAX_TRACE:
            self.trace.append({"item": index, "concurrency": self.current})
        else:
            self.trace_omitted += 1

    def state(self) -> dict[str, Any]:
        """What a batch passes on to the next one."""
        return {"limit": self.limit, "trace": self.trace, "traceOmitted": self.trace_omitted,
                "slowStart": self.slow_start}

    @staticmethod
    def from_state(ceiling: int, state: dict[str, Any]) -> Throttle:
        """The throttle a batch goes on with, from the ``state`` of the one before it."""
        return Throttle(ceiling, float(state["limit"]), trace=list(state["trace"]),
                        trace_omitted=int(state["traceOmitted"]), slow_start=bool(state["slowStart"]))


@dataclass
class Control:
    """What an ``iterate`` call checks besides ``continueOnError``: the failure policy over the whole loop
    (``total`` items, ``prior_failed`` failed in earlier batches), the adaptive concurrency, if any, and
    ``indexes``: the loop indexes of the items given, when they are not consecutive (a failed-items re-run)."""

    policy: FailurePolicy | None = None
    total: int = 0
    prior_failed: int = 0
    throttle: Throttle | None = None
    indexes: list[int] | None = None


def threshold_record(name: str, failed: int, done: int, by_code: dict[str, int]) -> dict[str, Any]:
    """What ``Tally.threshold`` holds: the threshold crossed and the counts by code at that moment."""
    return {"threshold": name, "failed": failed, "done": done, "byCode": dict(sorted(by_code.items()))}
