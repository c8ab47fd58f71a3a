"""``FlowLoop``: the workflow type of a big for-each loop's child runs (see ``workflows.engine.loops.batches``).

It is the interpreter (same queries, same step execution) started on a part of one loop. A type of its
own keeps loop parts out of listings of flow runs (``WorkflowType = "FlowWorkflow"``) and names them
plainly in the Temporal Web UI.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from flowtide.workflows.engine.interpreter import FAILURE_TYPES, FlowWorkflow
    from flowtide.workflows.engine.loops import batches as _batches


@workflow.defn(name=_batches.LOOP_WORKFLOW, failure_exception_types=FAILURE_TYPES, sandboxed=False)
class FlowLoopWorkflow(FlowWorkflow):
    """Runs a loop coordinator or one batch of a loop for its parent run."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]  # its own workflow type
        """Run the part of the loop that ``params["spec"]`` describes; return its counts."""
        return await _batches.run_child(self, params["flow"], params["spec"])
