"""The work meter of templates and conditions: operations and characters built, per step and per task.

The interpreter binds one ``Work`` per run (``bind``) and starts a step and a workflow task on it; templates
and conditions charge it. A step past ``limits.MAX_STEP_OPS`` or ``MAX_STEP_CHARS`` fails with
``WORK_BUDGET_EXCEEDED``; the engine yields a new workflow task once ``tired()``. Outside a run (``flowtide
validate``, tests), each ``render`` / ``evaluate`` call gets a fresh meter, so the step caps apply per call.
Pure: counting, never timing, so replay decides exactly as the run did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flowtide.workflows import limits
from flowtide.workflows.errors import LimitError


class Work:
    """What the current step and workflow task have spent; ``enforce()`` says whether a cap may fail it."""

    __slots__ = ("chars", "enforce", "enforce_schema", "ops", "task_chars", "task_ops")

    def __init__(self, enforce: Callable[[], bool] | None = None,
                 enforce_schema: Callable[[], bool] | None = None) -> None:
        self.enforce = enforce
        self.enforce_schema = enforce_schema  # whether a JSON Schema check's cap applies (language._schemas)
        self.ops = self.chars = self.task_ops = self.task_chars = 0

    def new_step(self) -> None:
        """A step starts: its caps start from zero."""
        self.ops = self.chars = 0

    def new_task(self) -> None:
        """A workflow task starts."""
        self.task_ops = self.task_chars = 0
        self.new_step()

    def tired(self) -> bool:
        """Whether this task has done enough: the engine should let the next step start a new task."""
        return self.task_ops > limits.TASK_OPS_YIELD or self.task_chars > limits.TASK_CHARS_YIELD

    def add(self, ops: int, chars: int = 0) -> None:
        """Charge ``ops`` operations and ``chars`` built characters; raise ``LimitError`` past a cap."""
        self.ops += ops
        self.chars += chars
        self.task_ops += ops
        self.task_chars += chars
        if self.ops > limits.MAX_STEP_OPS or self.chars > limits.MAX_STEP_CHARS:
            self._over()

    def spend(self, ops: int = 0, chars: int = 0) -> None:
        """Charge the task only: the engine's own work on the step's values (measuring, walking them)."""
        self.task_ops += ops
        self.task_chars += chars

    def room(self) -> int:
        """The characters this step may still build."""
        return limits.MAX_STEP_CHARS - self.chars

    def _over(self) -> None:
        if self.enforce is not None and not self.enforce():  # a run recorded before the caps: keep its course
            self.ops = self.chars = -(1 << 62)
            return
        what = (f"{limits.MAX_STEP_OPS} operations" if self.ops > limits.MAX_STEP_OPS
                else f"{limits.MAX_STEP_CHARS} characters built")
        self.new_step()
        raise LimitError("WORK_BUDGET_EXCEEDED",
                            f"the step's templates and conditions do too much work (over {what}); "
                            "filter or shorten the data in earlier steps")


_CURRENT: ContextVar[Work | None] = ContextVar("flowtide_work", default=None)


def current() -> Work:
    """The meter in force (``metered`` makes sure there is one)."""
    work = _CURRENT.get()
    return Work() if work is None else work  # a caller outside render/evaluate: a meter of its own


def bound() -> Work | None:
    """The run's meter, or None outside a run."""
    return _CURRENT.get()


def bind(work: Work) -> None:
    """Make ``work`` the meter of this task and of the asyncio tasks it starts (the run's)."""
    _CURRENT.set(work)


@contextmanager
def metered() -> Iterator[Work]:
    """The run's meter, or (outside a run) a fresh one for the duration of the block."""
    work = _CURRENT.get()
    if work is not None:
        yield work
        return
    work = Work()
    token = _CURRENT.set(work)
    try:
        yield work
    finally:
        _CURRENT.reset(token)
