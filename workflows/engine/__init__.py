"""The engine: the Temporal workflows that interpret a flow (workflow code, deterministic, no I/O).

``FlowWorkflow`` runs a flow; ``FlowLoopWorkflow`` runs one batch of a large for-each as a child;
``RunMetrics`` is the interceptor that counts runs. Outside this room, import from here; the modules with a
leading underscore are the interpreter's private helpers (steps, control kinds, loops, state, continue-as-new).
"""

from flowtide.workflows.engine.interpreter import FlowWorkflow
from flowtide.workflows.engine.loops.reuse import ITEMS_KEY
from flowtide.workflows.engine.loops.workflow import FlowLoopWorkflow
from flowtide.workflows.engine.metrics import RunMetrics

__all__ = ["ITEMS_KEY", "FlowLoopWorkflow", "FlowWorkflow", "RunMetrics"]
