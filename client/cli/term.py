"""Terminal niceties for ``flowtide run`` and ``runs watch``: colour and a live progress line (rich), only on a
terminal and never when ``NO_COLOR`` is set; redirected output stays plain text."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

# status words and icons of the run record text (client.render), and their colours
STYLES = (
    (r"\b(COMPLETED|completed)\b|✓", "green"),
    (r"\b(COMPLETED_WITH_ERRORS|completed_with_errors|WARNING|warning)\b|!", "yellow"),
    (r"\b(FAILED|failed|CANCELLED|cancelled|TIMED_OUT|timed_out|TERMINATED|terminated)\b|✗|⊘", "bold red"),
    (r"\b(RUNNING|running|retrying)\b|(?<= )…|↻", "cyan"),  # the running icon, not a cut title's ellipsis
    (r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b", "magenta"),  # error codes such as HTTP_SERVER_ERROR
)


def colour(stream: TextIO) -> bool:
    """Whether to colour ``stream``: a terminal, and ``NO_COLOR`` unset or empty (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def console(stderr: bool = False) -> Any:
    """A rich console on stdout or stderr (colour follows ``colour()``)."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, no_color=not colour(stream), highlight=False, soft_wrap=True)


def styled(text: str, one_line: bool = False) -> Any:
    """``text`` as a rich ``Text`` with status words, icons and error codes coloured (``one_line``: cut to the
    terminal's width with an ellipsis, for the live progress line)."""
    from rich.text import Text
    out = Text(text, no_wrap=one_line, overflow="ellipsis" if one_line else "fold")
    for pattern, style in STYLES:
        out.highlight_regex(pattern, style)
    return out


def print_text(text: str) -> None:
    """Print a run's text: coloured on a terminal, plain otherwise."""
    if colour(sys.stdout):
        console().print(styled(text))
    else:
        print(text)
