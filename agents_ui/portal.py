"""The citizens' mobile portal at ``/m`` (市民端): small Chinese pages for a phone, installable.

Pages: ``/m`` (home), ``/m/submit`` (登记诉求), ``/m/track`` (查询办理情况: number plus a
verified phone), ``/m/t/{token}`` (a private tracking link), ``/m/kb`` and ``/m/kb/{key}``
(政务知识). The knowledge pages are rendered here, whole, so that a shared link reads without
JavaScript (and in any search engine); the others are small forms driven by
``static/js/portal.js`` against ``/api/v1/portal``. Every page has the same layout
(``templates/portal/layout.html``) and the same strict policy as the staff pages, with
``blob:`` images for the photo previews. ``/m/manifest.webmanifest`` and ``/m/sw.js`` make it
an installable web app; the service worker keeps only the shell, never a citizen's data.
"""

from __future__ import annotations

import html
from functools import lru_cache
from string import Template
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from agents_ui.pages import CONTENT_SECURITY_POLICY, STATIC_DIR, TEMPLATES_DIR
from hotline.core.auth import SessionDep
from hotline.core.errors import AppError
from knowledgebase import service as kb_service

PORTAL_TEMPLATES = TEMPLATES_DIR / "portal"
PREFIX = "/m"
KB_RESULTS = 20

POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", "img-src 'self' data: blob:")
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    # A tracking link is a secret: never sent on to another site in a Referer.
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(self), camera=(self)",
    "Cache-Control": "no-cache",
}
# (template, title, page name) of the pages drawn by portal.js
STATIC_PAGES = {
    "": ("home.html", "市民服务", "home"),
    "/submit": ("submit.html", "登记诉求", "submit"),
    "/track": ("track.html", "查询办理情况", "track"),
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=16)
def _template(name: str) -> str:
    return (PORTAL_TEMPLATES / name).read_text(encoding="utf-8")


def page(title: str, name: str, main: str, *, status_code: int = 200) -> HTMLResponse:
    """A portal page: ``main`` (trusted HTML) in the shared layout."""
    text = Template(_template("layout.html")).substitute(
        title=html.escape(title), page=name, main=main
    )
    return HTMLResponse(text, status_code=status_code, headers=HEADERS)


def _add_static(path: str, filename: str, title: str, name: str) -> None:
    # async: no I/O (the templates are cached), so no hop through the thread pool.
    async def handler() -> HTMLResponse:
        return page(title, name, _template(filename))

    router.add_api_route(
        PREFIX + path, handler, methods=["GET"], name=f"portal.{name}", response_class=HTMLResponse
    )


for _path, (_file, _title, _name) in STATIC_PAGES.items():
    _add_static(_path, _file, _title, _name)


@router.get(PREFIX + "/t/{token}", name="portal.ticket", response_class=HTMLResponse)
async def tracked_ticket(token: str) -> HTMLResponse:
    """The tracking page's shell: the script reads the token from the address and asks the
    API with it in a header. Nothing of the ticket is in this HTML, so a cache holds none."""
    return page("办理情况", "ticket", _template("ticket.html"))


# -- knowledge, rendered here ------------------------------------------------------------------


def _search_form(q: str) -> str:
    return (
        '<form class="kb-search" method="get" action="/m/kb" role="search">'
        '<label for="kb-q">搜索政务知识</label>'
        '<div class="row"><input id="kb-q" name="q" type="search" maxlength="100" '
        f'value="{html.escape(q)}" placeholder="如：社保卡补办、积分入学" '
        'enterkeyhint="search"><button type="submit">搜索</button></div></form>'
    )


@router.get(PREFIX + "/kb", name="portal.kb", response_class=HTMLResponse)
def knowledge(session: SessionDep, q: Annotated[str, Query(max_length=100)] = "") -> HTMLResponse:
    """Search the published articles (server-rendered: a link works without JavaScript)."""
    q = q.strip()
    parts = ["<h1>政务知识</h1>", _search_form(q)]
    if q:
        hits = kb_service.search_articles(session, q=q, limit=KB_RESULTS)
        parts.append(f'<p class="meta" role="status">“{html.escape(q)}”找到 {len(hits)} 篇</p>')
        items = [
            f'<li><a href="/m/kb/{quote(h.key)}">{html.escape(h.title)}</a>'
            f'<p class="snippet">{h.snippet}</p>'  # escaped by the search, terms in <mark>
            f'<p class="meta">{html.escape(h.category)}</p></li>'
            for h in hits
        ]
        if not hits:
            parts.append(
                '<p>没有找到相关内容。换个说法试试，或者<a href="/m/submit">登记诉求</a>，'
                "由热线为您解答。</p>"
            )
    else:
        parts.append("<h2>最新发布</h2>")
        articles = kb_service.list_articles(session, status="published", limit=KB_RESULTS)
        items = []
        for article in articles:
            shown = kb_service.get_published(session, article["key"])
            items.append(
                f'<li><a href="/m/kb/{quote(shown.key)}">{html.escape(shown.title)}</a>'
                f'<p class="meta">{html.escape(shown.category)}</p></li>'
            )
    if items:
        parts.append(
            '<ul class="kb-list" data-testid="portal-kb-results">' + "".join(items) + "</ul>"
        )
    return page("政务知识", "kb", "".join(parts))


@router.get(PREFIX + "/kb/{key}", name="portal.kb_article", response_class=HTMLResponse)
def knowledge_article(key: str, session: SessionDep) -> HTMLResponse:
    """One published article, whole, at a URL that can be shared."""
    try:
        article = kb_service.get_published(session, key[:64])
    except AppError:
        body = (
            "<h1>未找到该内容</h1><p>这篇政务知识不存在或已下线。</p>"
            '<p><a href="/m/kb">返回政务知识</a></p>'
        )
        return page("未找到", "kb", body, status_code=404)
    published = article.published_at.strftime("%Y-%m-%d") if article.published_at else ""
    body = (
        '<nav class="crumbs" aria-label="位置"><a href="/m/kb">政务知识</a> › '
        f"{html.escape(article.category)}</nav>"
        f'<article class="kb-article" data-testid="portal-kb-article">'
        f"<h1>{html.escape(article.title)}</h1>"
        f'<p class="meta">{html.escape(article.category)} · 发布于 {published} · '
        f"第{article.version}版</p>"
        f'<div class="kb-body">{article.body_html}</div></article>'  # markdown-it, html=False
        '<p class="after">还有疑问？<a href="/m/submit">登记诉求</a>或拨打12345。</p>'
    )
    return page(article.title, "kb", body)


# -- installable web app ---------------------------------------------------------------------------


@router.get(PREFIX + "/manifest.webmanifest", name="portal.manifest")
async def manifest() -> JSONResponse:
    return JSONResponse(
        {
            "name": "珠海12345 市民服务",
            "short_name": "12345",
            "description": "登记诉求、查询办理情况、查阅政务知识",
            "lang": "zh-CN",
            "start_url": "/m",
            "scope": "/m",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#0b5cad",
            "icons": [
                {"src": "/static/portal/icon-192.png", "sizes": "192x192", "type": "image/png"},
                {"src": "/static/portal/icon-512.png", "sizes": "512x512", "type": "image/png"},
                {
                    "src": "/static/portal/icon-512.png",
                    "sizes": "512x512",
                    "type": "image/png",
                    "purpose": "maskable",
                },
            ],
        },
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get(PREFIX + "/sw.js", name="portal.service_worker")
def service_worker() -> Response:
    """Served from /m so that its scope is the portal (a worker's scope is its folder)."""
    return FileResponse(
        STATIC_DIR / "js" / "portal-sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/m"},
    )
