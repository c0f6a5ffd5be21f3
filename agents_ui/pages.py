"""The browser pages: log-in, agent console, KPI wall, dispatch desk, department inbox, KB.

The pages are plain HTML with JavaScript modules that call the JSON API and listen on the
websocket gateway; nothing is rendered on the server and nothing is loaded from the internet
(the one chart library is vendored under ``static/vendor``). Each page is served with a strict
Content-Security-Policy: scripts, styles and fonts only from this server, so even a slip in
escaping could not run an injected script.

Pages: ``/`` and ``/login`` (log-in, then each role lands on its page), ``/console`` (agent),
``/wall`` (supervisor), ``/desk`` (dispatcher), ``/inbox`` (department), ``/kb`` (editor),
``/admin`` (administration: users, departments, calendar, prompts, keys, rules, audit),
``/reports`` (supervisor: the oversight of departments, 效能监察) and ``/reports/print`` (its
monthly report for A4 paper). Static files are under ``/static`` (see ``mount_static``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_URL = "/static"
STATIC_MOUNT_NAME = "agents_ui_static"

# URL path -> the page's HTML file in templates/.
PAGES: dict[str, str] = {
    "/": "login.html",
    "/login": "login.html",
    "/console": "console.html",
    "/wall": "wall.html",
    "/desk": "desk.html",
    "/inbox": "inbox.html",
    "/kb": "kb.html",
    "/admin": "admin.html",
    "/reports": "reports.html",
    "/reports/print": "report-print.html",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        # Prompts are fetched with the bearer token and played from a blob: URL (admin page).
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The HTML is tiny and names the modules it loads; always revalidate so a new release's
    # page never runs against an old cached one.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=len(PAGES))
def _page_html(filename: str) -> str:
    return (TEMPLATES_DIR / filename).read_text(encoding="utf-8")


def _add_page_route(path: str, filename: str) -> None:
    def page() -> HTMLResponse:
        return HTMLResponse(_page_html(filename), headers=_PAGE_HEADERS)

    name = "agents_ui.page." + (path.strip("/") or "index")
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse, name=name)


for _path, _filename in PAGES.items():
    _add_page_route(_path, _filename)


@router.get("/favicon.ico", name="agents_ui.favicon")
def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page says; answer with the SVG icon."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


def mount_static(app: FastAPI) -> None:
    """Serve ``agents_ui/static`` (scripts, styles, the vendored chart library) at ``/static``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name=STATIC_MOUNT_NAME)
