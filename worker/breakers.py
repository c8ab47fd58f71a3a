"""The circuit breakers of this machine's workers, for ``flowtide breakers`` (see ``activities._breakers``)."""

from __future__ import annotations

from flowtide.activities._breakers import db_path, list_breakers, reset_breaker

__all__ = ["db_path", "list_breakers", "reset_breaker"]
