"""The flow language: documents, models, validation, JSON Schema, templates and conditions.

Pure Python with no Temporal in it: the CLI validates and explains flows with this room alone, and the
engine (``flowtide.workflows.engine``) interprets what it produces. Outside this room, import from here;
the modules with a leading underscore are its private helpers.
"""

from flowtide.workflows.language._rules import NEWER_RULES, newer_rules, without_newer_rules
from flowtide.workflows.language._schemas import SCHEMA_WORK_PATCH, safe_validator, schema_errors
from flowtide.workflows.language._webhook import webhook_header_problem
from flowtide.workflows.language.dsl import (
    Flow,
    flow_json_schema,
    load_flow_text,
    parse_flow,
    validate_payload,
)
from flowtide.workflows.language.dsl.raw import FLOW_ID_RE, parse_text, to_json_data, yaml_load
from flowtide.workflows.language.json_values import json_problem, json_safe
from flowtide.workflows.language.templates import render

__all__ = ["FLOW_ID_RE", "NEWER_RULES", "SCHEMA_WORK_PATCH", "Flow", "flow_json_schema", "json_problem", "json_safe",
           "load_flow_text", "newer_rules", "parse_flow", "parse_text", "render", "safe_validator", "schema_errors",
           "to_json_data", "validate_payload", "webhook_header_problem", "without_newer_rules", "yaml_load"]
