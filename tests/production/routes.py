"""The app's route table, flattened: what the role matrix and the audit test iterate."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route


def route_table(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, however deeply its routers are nested."""
    try:
        # FastAPI >= 0.137 keeps an included router as one entry of app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI flattened them into app.routes
        entries: Any = app.routes
    else:
        entries = iter_route_contexts(app.routes)
    table = set()
    for entry in entries:
        route = getattr(entry, "original_route", entry)
        if isinstance(route, APIWebSocketRoute):
            table.add(("WS", entry.path))
        elif isinstance(route, Mount):
            table.add(("MOUNT", entry.path))
        elif isinstance(route, APIRoute | Route):
            for method in sorted(set(entry.methods or ()) - {"HEAD", "OPTIONS"}):
                table.add((method, entry.path))
    return sorted(table)
