"""The names Temporal knows flow runs by, declared once: the workflow type, the default task queue, the custom
search attributes and a memo key (read by the engine, the worker, the client, the service and the docs)."""

from __future__ import annotations

import re

from temporalio.common import SearchAttributeKey

WORKFLOW_TYPE = "FlowWorkflow"  # the workflow type of every flow run (and of sub-flow runs)
DEFAULT_TASK_QUEUE = "flowtide"  # where workers poll unless FLOWTIDE_TASK_QUEUE or --task-queue says otherwise
# A value quoted inside a visibility query (a run or workflow id, a prefix, a flow id, an error code): these
# characters only, so it cannot close its quotes, and at most 300 of them, so no caller sends Temporal a
# megabyte of query. Every place that builds such a query checks its values with it.
QUERY_VALUE = re.compile(r"^[A-Za-z0-9_.:#$-]{1,300}$")
# memo key: the first run id of a run that continued as new (workflows.engine._continue_as_new)
MEMO_FIRST_RUN = "firstRunId"

FLOW_ID = SearchAttributeKey.for_keyword("FlowId")
FLOW_VERSION = SearchAttributeKey.for_int("FlowVersion")
FLOW_STATUS = SearchAttributeKey.for_keyword("FlowStatus")
FAILED_STEP = SearchAttributeKey.for_keyword("FailedStepId")
ERROR_CODE = SearchAttributeKey.for_keyword("ErrorCode")
RERUN_OF = SearchAttributeKey.for_keyword("RerunOf")
PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")  # runs started through the service (flowtide serve)
SEARCH_ATTRIBUTES = (FLOW_ID, FLOW_VERSION, FLOW_STATUS, FAILED_STEP, ERROR_CODE, RERUN_OF, PROJECT_ID)
