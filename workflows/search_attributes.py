"""The custom search attributes of flow runs: declared once, read by the engine, the client and the docs."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

FLOW_ID = SearchAttributeKey.for_keyword("FlowId")
FLOW_VERSION = SearchAttributeKey.for_int("FlowVersion")
FLOW_STATUS = SearchAttributeKey.for_keyword("FlowStatus")
FAILED_STEP = SearchAttributeKey.for_keyword("FailedStepId")
ERROR_CODE = SearchAttributeKey.for_keyword("ErrorCode")
RERUN_OF = SearchAttributeKey.for_keyword("RerunOf")
PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")  # runs started through the service (flowtide serve)
SEARCH_ATTRIBUTES = (FLOW_ID, FLOW_VERSION, FLOW_STATUS, FAILED_STEP, ERROR_CODE, RERUN_OF, PROJECT_ID)
