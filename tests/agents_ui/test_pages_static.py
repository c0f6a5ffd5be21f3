"""The pages as files: served with their security headers, self-contained, no unsafe DOM calls.

Fast checks without a browser; the browser tests are in test_pages_browser.py.
"""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents_ui import pages

STATIC = pages.STATIC_DIR
OWN_SCRIPTS = sorted((STATIC / "js").glob("*.js"))


@pytest.fixture(scope="module")
def web() -> TestClient:
    from hotline.app import create_app

    # No lifespan (no `with`): serving files needs neither the database nor Redis.
    return TestClient(create_app())


@pytest.mark.parametrize("path", [p for p in pages.PAGES if p != "/"])
def test_every_page_is_chinese_html_with_a_strict_policy(web, path):
    response = web.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<html lang="zh-CN">' in response.text
    assert re.search(r"<title>[^<]*珠海12345热线</title>", response.text)
    assert "<main" in response.text


def test_stable_test_hooks_are_on_the_pages():
    hooks = {
        "login.html": ["login-form"],
        "console.html": [
            "agent-state",
            "incoming-call",
            "caller-history",
            "ticket-form",
            "routing-preview",
        ],
        "wall.html": ["wall-rate-15s", "wall-waiting", "wall-agents"],
        "inbox.html": ["inbox-list"],
    }
    for filename, names in hooks.items():
        html = (pages.TEMPLATES_DIR / filename).read_text()
        for name in names:
            assert f'data-testid="{name}"' in html, (filename, name)
    kb = (STATIC / "js" / "kb.js").read_text()
    assert '"data-testid": "kb-search"' in kb and '"data-testid": "kb-results"' in kb


def _local_references(text: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', text) + re.findall(
        r'^\s*import\s.*?from\s+"([^"]+)"', text, flags=re.MULTILINE
    )


def test_everything_a_page_loads_is_shipped_and_served(web):
    references: set[str] = set()
    for template in pages.TEMPLATES_DIR.glob("*.html"):
        references.update(_local_references(template.read_text()))
    for script in OWN_SCRIPTS:
        for ref in _local_references(script.read_text()):
            references.add(ref if ref.startswith("/") else f"/static/js/{ref.removeprefix('./')}")
    assets = {r for r in references if r.startswith("/static/")}
    assert "/static/vendor/uplot/uPlot.esm.js" in assets and "/static/css/app.css" in assets
    for ref in sorted(references):
        assert not re.match(r"^(https?:)?//", ref), f"loads from another site: {ref}"
    for asset in sorted(assets):
        assert web.get(asset).status_code == 200, asset
    assert web.get("/favicon.ico").status_code == 200


def test_no_stylesheet_or_script_of_ours_reaches_the_internet():
    for path in [*OWN_SCRIPTS, STATIC / "css" / "app.css", *pages.TEMPLATES_DIR.glob("*.html")]:
        text = path.read_text()
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), path
        assert "@import" not in text and "@font-face" not in text, path  # system fonts only


def test_the_vendored_chart_library_keeps_its_licence():
    vendor = STATIC / "vendor" / "uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    assert (vendor / "uPlot.esm.js").stat().st_size > 50_000
    assert "export { uPlot as default }" in (vendor / "uPlot.esm.js").read_text()


@pytest.mark.parametrize("script", OWN_SCRIPTS, ids=lambda p: p.name)
def test_scripts_build_the_dom_from_text_only(script: Path):
    """Data reaches the page through textContent and createElement: no HTML parsing of data."""
    text = script.read_text()
    for dangerous in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert dangerous not in text, f"{script.name} uses {dangerous}"
    assert "new Function" not in text
