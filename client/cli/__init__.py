"""The ``flowtide`` command: one module per command group; ``main`` (in ``main.py``) builds the parser."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the ``flowtide`` command (loaded on call, so importing a command module stays cheap)."""
    from flowtide.client.cli.main import main as run
    return run(argv)
