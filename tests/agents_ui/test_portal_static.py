"""The portal's pages as files: strict policy, Chinese, self-contained, installable, and the
knowledge base readable without JavaScript. The browser tests are in test_portal_browser.py."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from agents_ui import pages, portal
from knowledgebase import service as kb_service

PAGES = ["/m", "/m/submit", "/m/track", "/m/t/abcdefghijklmnopqrstuvwxyz012345"]


@pytest.fixture(scope="module")
def web() -> TestClient:
    from hotline.app import create_app

    return TestClient(create_app())  # no lifespan: the shells need neither database nor Redis


@pytest.mark.parametrize("path", PAGES)
def test_every_portal_page_is_chinese_mobile_html_with_a_strict_policy(web, path):
    response = web.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "img-src 'self' data: blob:" in policy  # the photo previews
    assert response.headers["referrer-policy"] == "no-referrer"  # tracking links are secrets
    text = response.text
    assert '<html lang="zh-CN">' in text and 'name="viewport"' in text
    assert re.search(r"<title>[^<]*珠海12345热线</title>", text)
    assert '<link rel="manifest" href="/m/manifest.webmanifest">' in text
    assert "<main" in text and "$" not in text  # every placeholder filled


def test_the_tracking_shell_carries_nothing_of_a_ticket(web):
    text = web.get("/m/t/abcdefghijklmnopqrstuvwxyz012345").text
    assert "abcdefghijklmnopqrstuvwxyz012345" not in text


def test_installable_manifest_icons_and_worker(web):
    manifest = web.get("/m/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = json.loads(manifest.text)
    assert body["start_url"] == "/m" and body["display"] == "standalone"
    sizes = {icon["sizes"] for icon in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        assert web.get(icon["src"]).headers["content-type"] == "image/png"
    worker = web.get("/m/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/m"
    # The worker keeps the shell only: never the API or a tracking page.
    shell = re.search(r"const SHELL = \[(.*?)\];", worker.text, re.S).group(1)
    assert "/api/" not in shell and "/m/t/" not in shell


def test_everything_the_portal_loads_is_served(web):
    layout = (portal.PORTAL_TEMPLATES / "layout.html").read_text()
    script = (pages.STATIC_DIR / "js" / "portal.js").read_text()
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', layout)
    refs += ["/static/js/" + r.removeprefix("./") for r in re.findall(r'from "([^"]+)"', script)]
    assert "/static/js/portal.js" in refs and "/static/css/portal.css" in refs
    for ref in refs:
        assert web.get(ref).status_code == 200, ref
    for path in [*portal.PORTAL_TEMPLATES.glob("*.html"), pages.STATIC_DIR / "css" / "portal.css"]:
        assert not re.search(r"(?:src|href|url\()\s*['\"]?(https?:)?//", path.read_text()), path


@pytest.fixture
def kb_client(client):
    from hotline.core import db

    with db.transaction() as session:
        kb_service.seed_sample(session)
    return client


def test_knowledge_is_rendered_on_the_server(kb_client):
    home = kb_client.get("/m/kb")
    links = re.findall(r'href="(/m/kb/[^"]+)"', home.text)
    assert home.status_code == 200 and links
    article = kb_client.get(links[0])
    assert article.status_code == 200 and 'data-testid="portal-kb-article"' in article.text
    found = kb_client.get("/m/kb", params={"q": "社保卡"})
    assert "<mark>" in found.text and 'data-testid="portal-kb-results"' in found.text
    escaped = kb_client.get("/m/kb", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in escaped.text and "&lt;script&gt;" in escaped.text
    missing = kb_client.get("/m/kb/NO-SUCH-ARTICLE")
    assert missing.status_code == 404 and "未找到" in missing.text
