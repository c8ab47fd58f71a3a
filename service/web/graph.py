"""The flow drawn as a graph: an SVG made on the server (no script), one node per step of the flow document.

Steps run top to bottom; a ``core.if`` splits into its *then* and *else* lanes that join again below it; a
``core.for-each`` frames the steps it runs per item in a dashed box with a loop arrow. Each node shows the
step's status in this run (from the run record's rows) and a click on it opens its row of the step table
(``data-href``, followed by app.js),
which stays the text alternative of the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from flowtide.service.web.listview import STATUS_LABELS
from flowtide.workflows.kinds import FOR_EACH

NODE_W, NODE_H, GAP_Y, GAP_X, PAD = 230, 44, 26, 24, 14
MAX_NODES = 300  # a bigger flow is drawn up to here (the table lists every step)
# a step's status in the picture when several rows ran it (a loop's body): the worst one wins
_RANK = ("failed", "retrying", "running", "warning", "cancelled", "completed", "skipped")


@dataclass
class Drawing:
    """The SVG elements drawn so far, and how many nodes."""

    parts: list[str] = field(default_factory=list)
    nodes: int = 0


def statuses(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each step id's status in this run: the worst of its rows (a loop body's step ran once per item)."""
    out: dict[str, str] = {}
    for r in rows:
        if r.get("retried"):
            continue
        s, old = str(r.get("status")), out.get(r["stepId"])
        if old is None or (_RANK.index(s) if s in _RANK else 99) < (_RANK.index(old) if old in _RANK else 99):
            out[r["stepId"]] = s
    return out


def _blocks(step: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return step.get("blocks") or {}


def _size(steps: list[dict[str, Any]]) -> tuple[float, float]:
    if not steps:
        return 80, 22
    sizes = [_step_size(s) for s in steps]
    return max(w for w, _ in sizes), sum(h for _, h in sizes) + GAP_Y * (len(sizes) - 1)


def _step_size(step: dict[str, Any]) -> tuple[float, float]:
    blocks = _blocks(step)
    if step.get("kind") == "core.if":
        (wt, ht), (we, he) = _size(blocks.get("then") or []), _size(blocks.get("else") or [])
        return max(NODE_W, wt + GAP_X + we), NODE_H + 2 * GAP_Y + max(ht, he)
    if step.get("kind") == FOR_EACH:
        wb, hb = _size(blocks.get("steps") or [])
        return max(NODE_W, wb + 2 * PAD + 30), NODE_H + GAP_Y + hb + 2 * PAD
    return NODE_W, NODE_H


def _line(x1: float, y1: float, x2: float, y2: float, cls: str = "edge") -> str:
    return f'<path class="{cls}" d="M{x1:g} {y1:g} L{x2:g} {y2:g}"/>'


def _label(x: float, y: float, text: str, cls: str = "edge-label") -> str:
    return f'<text class="{cls}" x="{x:g}" y="{y:g}">{escape(text)}</text>'


class Graph:
    """Lays out and draws one flow's steps for one run."""

    def __init__(self, state: dict[str, str], href: Callable[[str], str | None], first_failed: str | None):
        self.state, self.href, self.first_failed = state, href, first_failed
        self.d = Drawing()

    def column(self, steps: list[dict[str, Any]], cx: float, y: float) -> float:
        """Draw ``steps`` centred on ``cx`` from ``y`` down; the bottom y."""
        if not steps:
            self.d.parts.append(_label(cx, y + 15, "(no steps)", "edge-label empty"))
            return y + 22
        for i, s in enumerate(steps):
            if i:
                self.d.parts.append(_line(cx, y - GAP_Y, cx, y - 2, "edge arrow"))
            y = self.step(s, cx, y) + GAP_Y
        return y - GAP_Y

    def step(self, s: dict[str, Any], cx: float, y: float) -> float:
        if self.d.nodes >= MAX_NODES:
            return y
        self.node(s, cx - NODE_W / 2, y)
        blocks = _blocks(s)
        if s.get("kind") == "core.if":
            (wt, ht), (we, he) = _size(blocks.get("then") or []), _size(blocks.get("else") or [])
            total = wt + GAP_X + we
            left, right = cx - total / 2 + wt / 2, cx + total / 2 - we / 2
            top, bottom = y + NODE_H + GAP_Y, y + NODE_H + 2 * GAP_Y + max(ht, he)
            for lane, label, body in ((left, "then", "then"), (right, "else", "else")):
                self.d.parts.append(_line(cx, y + NODE_H, lane, top - 2, "edge arrow"))
                self.d.parts.append(_label(lane + (-6 if lane < cx else 6), top - 8, label,
                                           "edge-label " + ("end" if lane < cx else "start")))
                end = self.column(blocks.get(body) or [], lane, top)
                self.d.parts.append(_line(lane, end, cx, bottom, "edge"))
            return bottom
        if s.get("kind") == FOR_EACH:
            w, h = _step_size(s)
            top = y + NODE_H + GAP_Y
            self.d.parts.append(f'<rect class="loop-frame" x="{cx - w / 2:g}" y="{top - PAD / 2:g}" '
                                f'width="{w:g}" height="{h - NODE_H - GAP_Y + PAD / 2:g}" rx="8"/>')
            self.d.parts.append(_line(cx, y + NODE_H, cx, top + PAD - 2, "edge arrow"))
            end = self.column(blocks.get("steps") or [], cx, top + PAD)
            side = cx + w / 2 - 12
            self.d.parts.append(f'<path class="edge loop arrow" d="M{cx:g} {end:g} V{end + 6:g} H{side:g} '
                                f'V{y + NODE_H / 2:g} H{cx + NODE_W / 2 + 2:g}"/>')
            self.d.parts.append(_label(side - 4, top + 2, "for each item", "edge-label end"))
            return y + h
        return y + NODE_H

    def node(self, s: dict[str, Any], x: float, y: float) -> None:
        self.d.nodes += 1
        sid = str(s.get("id"))
        status = self.state.get(sid, "not run")
        first = sid == self.first_failed
        title = str(s.get("title") or sid)
        title = title if len(title) <= 26 else title[:25] + "…"
        sub = f"{STATUS_LABELS.get(status, status).lower()}{' · first failed' if first else ''} · {s.get('kind')}"
        shape = (f'<rect class="node node-{status.replace(" ", "-")}{" first-failed" if first else ""}" '
                 f'x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                 f'{_label(x + 10, y + 18, title, "node-title")}'
                 f'{_label(x + 10, y + 35, sub, "node-sub")}')
        href = self.href(sid)
        # a link inside role="img" would be an interactive control nested in a picture (axe nested-interactive):
        # app.js follows data-href on a click; the step table below is the keyboard's and screen reader's way
        link = f' data-href="{escape(href)}"' if href else ""
        self.d.parts.append(f'<g class="step-node" data-step="{escape(sid)}"{link}>{shape}</g>')


def flow_graph(flow: dict[str, Any], state: dict[str, str], href: Callable[[str], str | None],
               first_failed: str | None) -> dict[str, Any] | None:
    """``{"svg", "nodes", "cut"}`` for the run page, or None without a flow document (``state``: each step id's
    status, see ``statuses``; ``href``: a step id's link or None)."""
    steps = flow.get("steps") or []
    if not steps:
        return None
    w, _ = _size(steps)
    g = Graph(state, href, first_failed)
    bottom = g.column(steps, w / 2 + 10, 10)
    width, height = w + 20, bottom + 12
    desc = f"{len(steps)} top-level steps; the step table below lists every step with its status"
    svg = (f'<svg class="graph" viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}" '
           f'role="img" aria-labelledby="graph-title graph-desc">'
           f'<title id="graph-title">Flow {escape(flow.get("id") or "")} as a graph</title>'
           f'<desc id="graph-desc">{escape(desc)}</desc>'
           '<defs><marker id="arrowhead" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0 0 L8 4 L0 8 z" class="arrowhead"/></marker></defs>'
           + "".join(g.d.parts) + "</svg>")
    return {"svg": Markup(svg), "nodes": g.d.nodes, "cut": g.d.nodes >= MAX_NODES}
