"""The size caps of the values a run keeps: each variable, and the run's scope (variables and step outputs).

Sizes are counted as JSON (``json_size``) when a value enters the scope; a value shared by several entries
counts each time. Past a cap the step fails with ``VALUE_TOO_LARGE`` and its value is not kept (in a run
recorded before the caps, ``bounded`` says no and the value is kept as it was then).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from flowtide.workflows import limits
from flowtide.workflows.engine._state import json_size
from flowtide.workflows.errors import StepFailure
from flowtide.workflows.language import SCHEMA_WORK_PATCH
from flowtide.workflows.language.json_values import json_problem

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost


BOUNDED_PATCH = "bounded-values"  # issue 23: the work meter's caps, its yields and VALUE_TOO_LARGE


def schema_bounded() -> bool:
    """Whether a JSON Schema check's cap applies (``language._schemas``): as ``bounded``, its own patch."""
    return workflow.patched(SCHEMA_WORK_PATCH)


def bounded() -> bool:
    """Whether the work and size caps apply: always in a new run, not in one recorded before them.

    Asked only when a cap is reached, so runs that never reach one record no marker.
    """
    return workflow.patched(BOUNDED_PATCH)


def _size(wf: RunHost, value: Any, where: str) -> int:
    """``value``'s compact-JSON size; measuring is charged to the task's work (it yields when tired).

    Raises ``VALIDATION_ERROR`` when ``value`` is not plain JSON (NaN, Infinity...: the JSON encoder refuses
    them at C speed, and only then is the value walked to say where).
    """
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False))
    except (RecursionError, ValueError, TypeError):
        _judge(value, where)
        size = json_size(value)
    wf.work.spend(chars=size)
    return size


def _judge(value: Any, where: str) -> None:
    problem = json_problem(value, where)
    if problem is not None and bounded():
        raise StepFailure("VALIDATION_ERROR", f"the step's output is not plain JSON: {problem}", retryable=False)


def _too_large(message: str) -> StepFailure:
    return StepFailure("VALUE_TOO_LARGE", message, retryable=False,
                       detail="keep large data outside the run (a file, a datastore row) and pass a reference")


def _admit(wf: RunHost, sizes: dict[str, tuple[Any, int]]) -> None:
    """Enter ``sizes`` into the scope's tally, or raise ``VALUE_TOO_LARGE`` when the total passes the cap."""
    total = wf.scope_bytes + sum(size - wf.scope_sizes.get(key, (None, 0))[1] for key, (_, size) in sizes.items())
    if total > limits.MAX_SCOPE_BYTES and bounded():
        raise _too_large(f"the run's scope (variables and step outputs) would be {total} bytes as JSON, over "
                         f"its limit of {limits.MAX_SCOPE_BYTES} bytes")
    wf.scope_sizes.update(sizes)
    wf.scope_bytes = total


def weigh_vars(wf: RunHost, values: dict[str, Any]) -> None:
    """Check the variables a set-variable sets: each against ``settings.limits.outputBytes``, then the scope."""
    cap = limits.limit(wf.settings, "outputBytes")
    sizes = {}
    for name, value in values.items():
        known = wf.scope_sizes.get("vars." + str(name))
        # the same object again (a step that copies ``{{ initial.items }}`` each time): measured already
        size = known[1] if known is not None and known[0] is value else _size(wf, value, f"vars.{name}")
        if size > cap and bounded():
            raise _too_large(f"variable '{str(name)[:100]}' would be {size} bytes as JSON, over "
                             f"settings.limits.outputBytes ({cap})")
        sizes["vars." + str(name)] = (value, size)
    _admit(wf, sizes)


def judge_output(output: Any) -> None:
    """An in-workflow step's output must be plain JSON (``"{{ '1e400' | float }}"`` is Infinity)."""
    try:
        json.dumps(output, default=str, allow_nan=False)
    except (RecursionError, ValueError, TypeError):
        _judge(output, "output")


def weigh_output(wf: RunHost, step_id: str, output: Any) -> None:
    """Check the output a top-level step keeps in the scope against the scope's cap."""
    _admit(wf, {step_id: (None, _size(wf, output, 'output'))})
