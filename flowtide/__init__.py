"""Flowtide: durable JSON/YAML flows on Temporal. The Python API for programs that hold a Temporal client.

    import flowtide
    record = await flowtide.run_flow(client, "flows/order.yaml", {"orderId": 7})

The names below are loaded on first use (PEP 562), so ``import flowtide`` stays cheap and the Temporal
workflow sandbox, which imports this package as the parent of ``flowtide.workflows``, loads nothing else.
The design's rooms are subpackages: ``flowtide.workflows`` (language and engine), ``flowtide.activities``,
``flowtide.worker`` and ``flowtide.client``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["FlowHandle", "FlowValidationError", "RunFailed", "__version__", "create_schedule", "create_worker",
           "delete_schedule", "describe_schedule", "example", "examples", "list_schedules", "pause_schedule",
           "run_flow", "start_flow", "trigger_schedule", "unpause_schedule", "validate"]

# public name -> the module that defines it
_EXPORTS = {
    "FlowHandle": "flowtide.client.api",
    "RunFailed": "flowtide.client.api",
    "create_worker": "flowtide.client.api",
    "run_flow": "flowtide.client.api",
    "start_flow": "flowtide.client.api",
    "validate": "flowtide.client.api",
    "FlowValidationError": "flowtide.workflows.errors",
    "example": "flowtide.client.examples",
    "examples": "flowtide.client.examples",
    "create_schedule": "flowtide.client.schedules",
    "delete_schedule": "flowtide.client.schedules",
    "describe_schedule": "flowtide.client.schedules",
    "list_schedules": "flowtide.client.schedules",
    "pause_schedule": "flowtide.client.schedules",
    "trigger_schedule": "flowtide.client.schedules",
    "unpause_schedule": "flowtide.client.schedules",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from flowtide.client.api import FlowHandle, RunFailed, create_worker, run_flow, start_flow, validate
    from flowtide.client.examples import example, examples
    from flowtide.client.schedules import (
        create_schedule,
        delete_schedule,
        describe_schedule,
        list_schedules,
        pause_schedule,
        trigger_schedule,
        unpause_schedule,
    )
    from flowtide.workflows.errors import FlowValidationError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowtide' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
