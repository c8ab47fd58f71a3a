"""The OpenAPI 3.1 document of the service (``GET /openapi.json``): every path, body, answer and the error shape."""

from __future__ import annotations

from typing import Any

from flowtide.service.http import MAX_REVISION
from flowtide.service.ops import MAX_WAIT_S
from flowtide.store.connection_kinds import FIELDS
from flowtide.store.database import PROJECT_ID
from flowtide.workflows.language import FLOW_ID_RE
from flowtide.workflows.limits import MAX_TEMPORAL_ID_BYTES

_REF = "#/components/schemas/"
ERRORS_BY_STATUS = {400: "BAD_REQUEST or INPUT_INVALID", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                    408: "REQUEST_TIMEOUT (the body did not arrive in time)",
                    409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED",
                    500: "INTERNAL", 502: "the run's error code (webhooks)", 503: "TEMPORAL_UNAVAILABLE"}
STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
NSTR, NINT = {"type": ["string", "null"]}, {"type": ["integer", "null"]}
ANY: dict[str, Any] = {}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "required": required or list(props)}
    if not extra:
        out["additionalProperties"] = False
    return out


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"errors": {"type": "array", "minItems": 1, "items": _obj({
        "message": STR, "path": {"type": "array"},
        "extensions": _obj({"code": STR, "requestId": STR,
                            "problems": {"type": "array", "items": _obj({"path": STR, "message": STR})},
                            "runId": NSTR, "workflowId": NSTR}, ["code"])}, ["message", "extensions"])}}),
    "Deployed": _obj({"flowId": STR, "revision": INT, "deployedAt": STR, "unchanged": BOOL}),
    "FlowList": _obj({"flows": {"type": "array", "items": _obj(
        {"flowId": STR, "revision": INT, "deployedAt": STR, "title": NSTR})}}),
    "FlowRevision": _obj({"flowId": STR, "revision": INT, "deployedAt": STR, "document": ANY}),
    "Revisions": _obj({"revisions": {"type": "array", "items": _obj(
        {"revision": INT, "deployedAt": STR, "keyName": NSTR})}}),
    "Started": _obj({"runId": STR, "workflowId": STR, "status": STR, "revision": NINT}),
    "RunRef": _obj({"runId": STR, "workflowId": STR}),
    "RunRecord": _obj({"runId": STR, "workflowId": STR, "flowId": NSTR, "status": STR, "startedAt": NSTR,
                       "completedAt": NSTR, "durationMs": NINT, "progress": ANY, "error": ANY,
                       "errors": {"type": "array"}, "steps": {"type": "array"}, "output": ANY,
                       "webhookResponse": ANY}, ["runId", "workflowId", "status", "steps"]),
    "RunList": _obj({"runs": {"type": "array", "items": _obj(
        {"runId": STR, "workflowId": STR, "flowId": NSTR, "revision": NINT, "status": STR, "startedAt": NSTR,
         "completedAt": NSTR, "durationMs": NINT, "failedStepId": NSTR, "errorCode": NSTR})}, "nextCursor": NSTR}),
    "StartBody": _obj({"input": ANY}, []),
    "RevertBody": _obj({"revision": {"type": "integer", "minimum": 1, "maximum": MAX_REVISION}}),
    "RerunBody": _obj({"fromFailed": BOOL, "input": ANY,
                       "revision": {"type": "integer", "minimum": 1, "maximum": MAX_REVISION}}, []),
    "FlowDocument": {"description": "a flow document (docs/flow-language.md): an object with steps, or a list "
                                    "of steps", "type": ["object", "array"]},
    "Health": _obj({"ok": BOOL, "temporal": BOOL, "database": BOOL}),
    "GraphQLRequest": _obj({"query": STR, "variables": {"type": ["object", "null"]}, "operationName": NSTR},
                           ["query"]),
    "GraphQLResponse": _obj({"data": {"type": ["object", "null"]}, "errors": {"type": "array"}}, ["data"]),
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema)}}


def _op(summary: str, ok: dict[int, str], errors: tuple[int, ...], *, body: str | None = None,
        params: tuple[str, ...] = (), yaml: bool = False, auth: bool = True) -> dict[str, Any]:
    responses: dict[str, Any] = {str(s): {"description": summary, "content": _json(name)} for s, name in ok.items()}
    for status in (*errors, *((401, 403, 429) if auth else ()), 500, 503):
        responses[str(status)] = {"description": ERRORS_BY_STATUS[status], "content": _json("Error")}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "parameters": [_ref_param(p) for p in params]}
    if auth:
        op["parameters"].append(_ref_param("ProjectHeader"))
        responses["400"] = {"description": ERRORS_BY_STATUS[400], "content": _json("Error")}
    else:
        op["security"] = []
    if body:
        content = _json(body)
        if yaml:
            content["application/yaml"] = {"schema": _ref(body)}
        op["requestBody"] = {"required": body not in ("StartBody", "RerunBody"), "content": content}
        responses.update({"408": {"description": ERRORS_BY_STATUS[408], "content": _json("Error")},
                          "413": {"description": "PAYLOAD_TOO_LARGE", "content": _json("Error")},
                          "415": {"description": "UNSUPPORTED_MEDIA_TYPE", "content": _json("Error")}})
    return op


def _ref_param(name: str) -> dict[str, str]:
    return {"$ref": "#/components/parameters/" + name}


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


PARAMETERS = {
    "ProjectHeader": _param("x-project-id", "header",
                            {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}, True),
    "IdempotencyKey": _param("Idempotency-Key", "header", {"type": "string", "maxLength": 255}),
    "FlowId": _param("flowId", "path", {"type": "string", "pattern": f"^{FLOW_ID_RE.pattern}$"}),
    "RunId": _param("runId", "path", {"type": "string", "description": "run id or workflow id (any run id of a "
                                      "run that continued as new, its first one included)"}),
    "SignalName": _param("name", "path", {"type": "string", "minLength": 1, "description": "at most "
                                          f"{MAX_TEMPORAL_ID_BYTES} bytes of UTF-8, no control characters"}),
    "ProjectId": _param("projectId", "path", {"type": "string", "pattern": PROJECT_ID.pattern}),
    "Wait": _param("wait", "query", {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S}),
    "Revision": _param("revision", "query", {"type": "integer", "minimum": 1, "maximum": MAX_REVISION}),
    "Status": _param("status", "query", STR),
    "FlowFilter": _param("flowId", "query", STR),
    "Limit": _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
    "Cursor": _param("cursor", "query", STR),
    "Signature": _param("X-Flowtide-Signature", "header", {"type": "string", "description": "t=<unix>,v1=<hex>"}),
}


def _paths() -> dict[str, Any]:
    return {
        "/v1/flows": {"get": _op("deployed flows of the project", {200: "FlowList"}, ())},
        "/v1/flows/{flowId}": {
            "put": _op("deploy a new revision (200: identical to the deployed one, nothing stored)",
                       {201: "Deployed", 200: "Deployed"}, (), body="FlowDocument", yaml=True,
                       params=("FlowId",)),
            "get": _op("one revision (default: the deployed one)", {200: "FlowRevision"}, (404,),
                       params=("FlowId", "Revision"))},
        "/v1/flows/{flowId}/revisions": {"get": _op("revision history, newest first", {200: "Revisions"}, (404,),
                                                    params=("FlowId",))},
        "/v1/flows/{flowId}/revert": {"post": _op("deploy an old revision's document as a new revision",
                                                  {201: "Deployed", 200: "Deployed"}, (404,), body="RevertBody",
                                                  params=("FlowId",))},
        "/v1/flows/{flowId}/runs": {"post": _op("start a run of the deployed revision",
                                                {202: "Started", 200: "RunRecord"}, (404, 409), body="StartBody",
                                                params=("FlowId", "Wait", "IdempotencyKey"))},
        "/v1/runs": {"get": _op("the project's runs, newest first", {200: "RunList"}, (),
                                params=("Status", "FlowFilter", "Limit", "Cursor"))},
        "/v1/runs/{runId}": {"get": _op("the run record", {200: "RunRecord"}, (404,), params=("RunId",))},
        "/v1/runs/{runId}/rerun": {"post": _op("re-run", {202: "Started"}, (404, 409), body="RerunBody",
                                               params=("RunId",))},
        "/v1/runs/{runId}/signals/{name}": {"post": {**_op("send a signal (body: its data)", {202: "RunRef"},
                                                           (404, 409), params=("RunId", "SignalName")),
                                                     "requestBody": {"required": False, "content": {
                                                         "application/json": {"schema": ANY}}}}},
        "/v1/runs/{runId}/cancel": {"post": _op("cancel", {202: "RunRef"}, (404, 409), params=("RunId",))},
        "/v1/hooks/{projectId}/{flowId}": {"post": {**_op(
            "webhook: start the deployed flow with the body; the run's webhookResponse, else 202",
            {202: "RunRef"}, (404, 409, 502), params=("ProjectId", "FlowId", "IdempotencyKey", "Signature"),
            auth=False), "responses": _hook_responses(), "requestBody": {"required": False, "content": {
                "application/json": {"schema": ANY}}}}},
        "/graphql": {"post": _op("GraphQL (queries flows, flow, runs, run; mutations startRun, rerun, cancelRun)",
                                 {200: "GraphQLResponse"}, (), body="GraphQLRequest")},
        "/healthz": {"get": _op("health", {200: "Health", 503: "Health"}, (), auth=False)},
        "/openapi.json": {"get": {"summary": "this document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": ANY}}}}}},
    }


OPERATION_IDS = {
    ("/v1/flows", "get"): "listFlows", ("/v1/flows/{flowId}", "put"): "deployFlow",
    ("/v1/flows/{flowId}", "get"): "getFlow", ("/v1/flows/{flowId}/revisions", "get"): "flowRevisions",
    ("/v1/flows/{flowId}/revert", "post"): "revertFlow", ("/v1/flows/{flowId}/runs", "post"): "startRun",
    ("/v1/runs", "get"): "listRuns", ("/v1/runs/{runId}", "get"): "getRun",
    ("/v1/runs/{runId}/rerun", "post"): "rerunRun", ("/v1/runs/{runId}/signals/{name}", "post"): "signalRun",
    ("/v1/runs/{runId}/cancel", "post"): "cancelRun", ("/v1/hooks/{projectId}/{flowId}", "post"): "webhook",
    ("/graphql", "post"): "graphql", ("/healthz", "get"): "healthz", ("/openapi.json", "get"): "openapi"}
_RUN = {"runId": "$response.body#/runId"}
_FLOW = {"flowId": "$response.body#/flowId"}
# what a client does next with an answer (OpenAPI links): a started run is read, signalled, cancelled, re-run;
# a deployed flow is read, listed, run
LINKS = {("startRun", "202"): {"GetRun": ("getRun", _RUN), "SignalRun": ("signalRun", {**_RUN, "name": "go"}),
                               "CancelRun": ("cancelRun", _RUN), "RerunRun": ("rerunRun", _RUN)},
         ("startRun", "200"): {"GetRun": ("getRun", _RUN), "RerunRun": ("rerunRun", _RUN)},
         ("deployFlow", "201"): {"GetFlow": ("getFlow", _FLOW), "FlowRevisions": ("flowRevisions", _FLOW),
                                 "StartRun": ("startRun", _FLOW)}}


def _linked(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with every operation's ``operationId`` and the ``LINKS`` between them."""
    for (path, method), op_id in OPERATION_IDS.items():
        op = paths[path][method]
        op["operationId"] = op_id
        for (source, status), links in LINKS.items():
            if source == op_id:
                op["responses"][status]["links"] = {name: {"operationId": target, "parameters": params}
                                                    for name, (target, params) in links.items()}
    return paths


def _hook_responses() -> dict[str, Any]:
    out: dict[str, Any] = {"default": {"description": "the run's webhookResponse (status, headers, body)"},
                           "202": {"description": "the run goes on", "content": _json("RunRef")}}
    for status in (400, 401, 403, 404, 408, 409, 413, 415, 429, 500, 502, 503):
        out[str(status)] = {"description": ERRORS_BY_STATUS[status], "content": _json("Error")}
    return out


def _connection_parts() -> dict[str, dict[str, Any]]:
    """The paths, schemas and parameters of ``/v1/connections`` for the OpenAPI document."""
    name = _param("name", "path", {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,99}$"})
    conn = _obj({"name": STR, "kind": STR, "state": {"enum": ["ok", "error"]}, "reason": NSTR, "project": NSTR,
                 "config": {"type": "object"}, "updatedAt": STR, "stateAt": STR, "tokenExpiresAt": NSTR})
    body = {"type": "object", "description": "kind (bearer, basic, api-key, oauth2) and its fields: token | "
            "username, password | header, value | tokenUrl, clientId, clientSecret, refreshToken?, scopes?; "
            "origins? (any kind: where steps may use it); credential values are write-only",
            "properties": {"kind": {"enum": list(FIELDS)}}}
    removed = _op("remove a connection", {}, (404,), params=("ConnectionName",))
    removed["responses"]["204"] = {"description": "removed"}
    return {
        "paths": {
            "/v1/connections": {"get": _op("connections (settings and state, never secrets)", {200: "ConnectionList"},
                                           ())},
            "/v1/connections/{name}": {
                "put": _op("add (201) or reconnect (200) a connection", {200: "Connection", 201: "Connection"},
                           (404,), body="ConnectionBody", params=("ConnectionName",)),
                "get": _op("one connection", {200: "Connection"}, (404,), params=("ConnectionName",)),
                "delete": removed}},
        "schemas": {"Connection": conn, "ConnectionBody": body,
                    "ConnectionList": _obj({"connections": {"type": "array", "items": conn}})},
        "parameters": {"ConnectionName": name},
    }


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    extra = _connection_parts()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Flowtide API", "version": "1",
                 "description": "Every non-2xx answer has the Error shape; see docs/api.md."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**_linked(_paths()), **extra["paths"]},
        "components": {"schemas": {**SCHEMAS, **extra["schemas"]}, "parameters": {**PARAMETERS, **extra["parameters"]},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API key, ftk_..."}}},
    }
