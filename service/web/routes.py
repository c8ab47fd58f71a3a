"""The pages' routes and static assets, mounted by ``service.app.create_app`` next to the API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flowtide.service.web import auth, flowpages, live, pages


async def home(request: Request) -> Response:
    """``/``: the runs."""
    return RedirectResponse("/runs", status_code=303)


def web_routes() -> list[BaseRoute]:
    """Routes of the runs page (docs/runs.md)."""
    return [
        Route("/", home, methods=["GET"]),
        Route("/signin", auth.signin_page, methods=["GET"]),
        Route("/signin", auth.signin, methods=["POST"]),
        Route("/signout", auth.signout, methods=["POST"]),
        Route("/runs", pages.runs, methods=["GET"]),
        Route("/live/runs", live.list_events, methods=["GET"]),
        Route("/live/runs/{runId}", live.run_events, methods=["GET"]),
        Route("/runs/{runId}", pages.run, methods=["GET"]),
        Route("/runs/{runId}/data", pages.data, methods=["GET"]),
        Route("/runs/{runId}/signal", pages.send_signal, methods=["POST"]),
        Route("/runs/{runId}/rerun", pages.rerun_plan, methods=["GET"]),
        Route("/runs/{runId}/rerun", pages.rerun_start, methods=["POST"]),
        Route("/flows", flowpages.flows, methods=["GET"]),
        Route("/flows/{flowId}", flowpages.flow, methods=["GET"]),
        Route("/flows/{flowId}/revert", flowpages.revert, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
