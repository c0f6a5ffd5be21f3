"""The knowledge-base editors' screens at /kb (知识库采编优化纠错) in a real chromium.

An editor writes and submits, a second editor sends back and then approves, the article is
found by search; an agent's error report (纠错) from the console is fixed on the queue;
versions are compared side by side and restored; searches that found nothing open a prefilled
editor; a file is imported with its bad lines reported; every view passes axe-core.

Set HOTLINE_TEST_SHOTS to a directory to keep a 1440×900 screenshot of each view.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest

from tests.agents_ui.browsing import (
    Server,
    assert_not_reloaded,
    axe_violations,
    expect,
    mark_no_reload,
    open_page,
    wait_live,
    wait_ready,
)

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("HOTLINE_TEST_SHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def new_key() -> str:
    return f"KB-BR-{uuid.uuid4().hex[:8].upper()}"


def kb_api(server: Server, username: str, method: str, path: str, expect_status=200, **kw):
    response = server.http.request(
        method, f"/api/v1/kb{path}", headers=server.headers(username), **kw
    )
    assert response.status_code == expect_status, response.text
    return response.json() if response.content else None


def published_article(server: Server, *, title: str, body: str, keywords: list[str]) -> str:
    key = new_key()
    article = {"key": key, "title": title, "body": body, "category": "交通出行"}
    kb_api(server, "editor", "POST", "/articles", 201, json={**article, "keywords": keywords})
    kb_api(server, "editor", "POST", f"/articles/{key}/submit")
    kb_api(server, "editor2", "POST", f"/articles/{key}/approve", json={"publish": True})
    return key


def open_view(page, server: Server, hash_: str, view: str) -> None:
    """Open a view afresh (reloaded: the same address again would not redraw it)."""
    page.goto(f"{server.url}/kb{hash_}")
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("kb-view")).to_have_attribute("data-view", view)
    expect(page.get_by_test_id("kb-view")).to_have_attribute("aria-busy", "false")


def test_an_editor_writes_a_second_editor_reviews_and_agents_find_it(browser, server):
    key = new_key()
    editor = open_page(browser, server, "editor")
    # The editor's page opens on the work list.
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "list")
    expect(editor.get_by_role("link", name="文章", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    editor.get_by_role("link", name="新建文章", exact=True).first.click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "new")
    editor.get_by_label("编号").fill(key)
    editor.get_by_label("分类").fill("交通出行")
    editor.get_by_label("标题").fill("港珠澳大桥穿梭巴士乘车指南")
    editor.get_by_label("关键词").fill("港珠澳大桥，穿梭巴士 金巴")
    editor.get_by_label("正文", exact=True).fill(
        "穿梭巴士**24小时**运营。\n\n- 珠海口岸上车\n- 票价65元\n\n<script>window.__xss=1</script>"
    )
    preview = editor.get_by_test_id("kb-preview")
    # The live preview is the server's rendering, as agents will see it.
    expect(preview.locator("strong")).to_have_text("24小时")
    expect(preview.locator("li")).to_have_text(["珠海口岸上车", "票价65元"])
    expect(preview).to_contain_text("<script>window.__xss=1</script>")
    expect(editor.locator(".kb-preview-card h3")).to_have_text("港珠澳大桥穿梭巴士乘车指南")
    shot(editor, "kb-editor")
    editor.get_by_role("button", name="保存并提交审核").click()
    expect(editor.get_by_test_id("kb-flash")).to_contain_text("提交审核")
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "article")
    expect(editor.locator(".kb-status")).to_have_text("待审核")
    assert editor.evaluate("window.__xss") is None
    # Nobody reviews their own version: the screen says so, and the API refuses.
    expect(editor.get_by_test_id("kb-review")).to_contain_text("需由另一位编辑审核")
    expect(editor.get_by_role("button", name="通过并发布")).to_have_count(0)
    refused = kb_api(server, "editor", "POST", f"/articles/{key}/approve", 403, json={})
    assert refused["error"]["code"] == "kb.self_review"

    # A second editor finds it waiting, and sends it back with a comment.
    reviewer = open_page(browser, server, "editor2")
    reviewer.get_by_role("link", name="待审核").click()
    waiting = reviewer.get_by_test_id("kb-article-list")
    expect(waiting.locator(f'tr[data-key="{key}"]')).to_contain_text("待审核")
    waiting.get_by_role("link", name="港珠澳大桥穿梭巴士乘车指南").click()
    review = reviewer.get_by_test_id("kb-review")
    review.get_by_role("button", name="退回修改").click()
    expect(review.get_by_role("alert")).to_contain_text("退回修改时请写明原因")
    review.get_by_label("审核意见").fill("请注明票价以口岸公告为准")
    review.get_by_role("button", name="退回修改").click()
    expect(reviewer.get_by_test_id("kb-flash")).to_contain_text("已退回")
    expect(reviewer.locator(".kb-status")).to_have_text("草稿")

    # The author reads the comment, edits and submits again.
    open_view(editor, server, f"#article/{key}", "article")
    expect(editor.get_by_test_id("kb-sent-back")).to_contain_text("请注明票价以口岸公告为准")
    editor.get_by_role("link", name="编辑").click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "edit")
    expect(editor.get_by_label("编号")).to_be_disabled()
    body = editor.get_by_label("正文", exact=True)
    body.fill("穿梭巴士**24小时**运营。\n\n- 珠海口岸上车\n- 票价65元，以口岸公告为准")
    expect(editor.get_by_test_id("kb-preview").locator("li").nth(1)).to_have_text(
        "票价65元，以口岸公告为准"
    )
    editor.get_by_label("修改说明（可选）").fill("按审核意见补充")
    editor.get_by_role("button", name="保存并提交审核").click()
    expect(editor.get_by_test_id("kb-flash")).to_contain_text("v2")

    # The second editor approves and publishes it.
    open_view(reviewer, server, f"#article/{key}", "article")
    review = reviewer.get_by_test_id("kb-review")
    expect(review).to_contain_text("editor 提交的 v2")
    shot(reviewer, "kb-review")
    review.get_by_label("审核意见").fill("内容准确")
    review.get_by_role("button", name="通过并发布").click()
    expect(reviewer.get_by_test_id("kb-flash")).to_contain_text("已通过并发布")
    expect(reviewer.locator(".kb-status")).to_have_text("已发布")
    expect(reviewer.get_by_test_id("kb-reviews").locator("li")).to_have_count(2)
    expect(reviewer.get_by_test_id("kb-reviews").locator("li").first).to_contain_text("内容准确")

    # Published: the /kb search finds it.
    reviewer.get_by_role("link", name="搜索").click()
    reviewer.get_by_test_id("kb-search").fill("港珠澳大桥穿梭巴士")
    found = reviewer.get_by_test_id("kb-results").locator(f'li[data-key="{key}"]')
    expect(found).to_contain_text("港珠澳大桥穿梭巴士乘车指南")
    # Editors fix articles themselves: a result opens the article, no report form.
    expect(found.get_by_role("button", name="报告错误")).to_have_count(0)
    found.get_by_role("link", name="港珠澳大桥穿梭巴士乘车指南").click()
    expect(reviewer.get_by_test_id("kb-view")).to_have_attribute("data-view", "article")
    expect(reviewer.locator(".kb-status")).to_have_text("已发布")

    # The work list filters by status and by how long an article went without review.
    open_view(reviewer, server, "#list", "list")
    reviewer.get_by_label("状态").select_option("published")
    expect(reviewer.get_by_test_id("kb-view")).to_have_attribute("data-view", "list")
    expect(
        reviewer.get_by_test_id("kb-article-list").locator(f'tr[data-key="{key}"]')
    ).to_be_visible()
    assert "status=published" in reviewer.url
    reviewer.get_by_label("分类").select_option("交通出行")
    expect(reviewer).to_have_url(re.compile(r"#list\?.*status=published&category="))
    listed = reviewer.get_by_test_id("kb-article-list")
    expect(listed.locator(f'tr[data-key="{key}"]')).to_be_visible()
    categories = listed.locator("tbody td:nth-child(3)")
    expect(categories.filter(has_not_text="交通出行")).to_have_count(0)
    expect(categories).not_to_have_count(0)
    reviewer.get_by_label("审核时间").select_option("3")
    expect(reviewer.get_by_test_id("kb-article-list")).to_have_text("没有符合条件的文章。")
    editor.context.close()
    reviewer.context.close()


def test_an_agents_error_report_is_fixed_on_the_queue(browser, server):
    key = published_article(
        server,
        title="横琴口岸通关时间",
        body="横琴口岸旅检通道每日8时至22时开放。",
        keywords=["横琴口岸", "通关时间"],
    )
    other = published_article(
        server,
        title="拱北口岸通关时间",
        body="拱北口岸旅检通道每日6时至次日1时开放。",
        keywords=["拱北口岸", "通关时间"],
    )
    # The agent reports from the console's knowledge-base pane, during a call.
    agent = open_page(browser, server, "agent1")
    agent.get_by_test_id("kb-search").fill("横琴口岸几点关门")
    result = agent.get_by_test_id("kb-results").locator(f'li[data-key="{key}"]')
    result.get_by_role("button", name="报告错误").click()
    result.get_by_label("内容过时").check()
    result.get_by_label("说明").fill("已改为24小时通关")
    result.get_by_role("button", name="提交报告").click()
    expect(result).to_contain_text("已提交")
    kb_api(server, "agent1", "POST", f"/articles/{other}/flags", 201,
           json={"kind": "wrong", "note": "时间写错了", "question": "拱北几点开"})  # fmt: skip

    editor = open_page(browser, server, "editor")
    editor.get_by_role("link", name="纠错").click()
    flags = editor.get_by_test_id("kb-flags")
    card = flags.locator(f'li[data-key="{key}"]')
    expect(card).to_contain_text("来电人问题：横琴口岸几点关门")
    expect(card).to_contain_text("已改为24小时通关")
    expect(card).to_contain_text("内容过时")
    expect(card.get_by_role("link", name="横琴口岸通关时间")).to_be_visible()
    shot(editor, "kb-flags")
    card.get_by_role("button", name="修改文章").click()
    body = card.get_by_label("正文")
    expect(body).to_have_value("横琴口岸旅检通道每日8时至22时开放。")
    body.fill("横琴口岸旅检通道24小时开放。")
    card.get_by_label("处理说明").fill("按口岸新规更正")
    card.get_by_role("button", name="保存修改并关闭报告").click()
    expect(editor.get_by_test_id("kb-flash")).to_contain_text("已修正")
    expect(flags.locator(f'li[data-key="{key}"]')).to_have_count(0)

    # The other report is declined with a reason.
    card = editor.get_by_test_id("kb-flags").locator(f'li[data-key="{other}"]')
    expect(card).to_contain_text("来电人问题：拱北几点开")
    card.get_by_role("button", name="驳回").click()
    dialog = editor.locator("#action-dialog")
    dialog.get_by_label("驳回理由（报告人会看到）").fill("核实无误，时间正确")
    dialog.get_by_role("button", name="驳回").click()
    expect(editor.get_by_test_id("kb-flash")).to_contain_text("已驳回")
    expect(editor.get_by_test_id("kb-flags").locator(f'li[data-key="{other}"]')).to_have_count(0)

    resolved = kb_api(server, "editor", "GET", "/flags", params={"status": "resolved", "key": key})
    assert [(f["resolution"], f["resolved_version"]) for f in resolved] == [("按口岸新规更正", 2)]
    declined = kb_api(
        server, "editor", "GET", "/flags", params={"status": "declined", "key": other}
    )
    assert [f["resolution"] for f in declined] == ["核实无误，时间正确"]
    # The correction is a new version sent to review; agents still see the published one.
    article = kb_api(server, "editor", "GET", f"/articles/{key}")
    assert (article["version"], article["editor"]["status"]) == (2, "in_review")
    assert article["body"] == "横琴口岸旅检通道24小时开放。"
    editor.get_by_role("link", name="已修正").click()
    expect(editor.get_by_test_id("kb-flags").locator(f'li[data-key="{key}"]')).to_contain_text(
        "新版本 v2"
    )
    agent.context.close()
    editor.context.close()


def test_versions_are_compared_side_by_side_and_an_old_one_restored(browser, server):
    key = published_article(
        server,
        title="公交夜班线路",
        body="夜班公交N1路每晚23时发车。票价2元。",
        keywords=["夜班公交"],
    )
    kb_api(
        server,
        "editor2",
        "PUT",
        f"/articles/{key}",
        json={"body": "夜班公交N1路每晚23时发车。票价3元。"},
    )
    editor = open_page(browser, server, "editor")
    open_view(editor, server, f"#article/{key}", "article")
    editor.get_by_role("link", name="历史版本").click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "history")
    expect(editor.get_by_test_id("kb-versions").locator("tbody tr")).to_have_count(2)
    diff = editor.get_by_test_id("kb-diff")
    expect(diff.locator("th")).to_have_text(["v1", "v2"])
    expect(diff.locator("td.diff-del")).to_have_text(["− 删除：票价2元。"])
    expect(diff.locator("td.diff-ins")).to_have_text(["+ 新增：票价3元。"])
    expect(diff.locator("tr.diff-equal").first).to_contain_text("标题：公交夜班线路")
    shot(editor, "kb-history")

    editor.get_by_role("button", name="恢复此版本 v1").click()
    dialog = editor.locator("#action-dialog")
    dialog.get_by_label("恢复说明（可选）").fill("票价未调整")
    dialog.get_by_role("button", name="恢复").click()
    expect(editor.get_by_test_id("kb-flash")).to_contain_text("恢复为新版本 v3")
    expect(editor.get_by_test_id("kb-article-body")).to_contain_text("票价2元")
    restored = kb_api(server, "editor", "GET", f"/articles/{key}/versions/3")
    assert restored["body"] == "夜班公交N1路每晚23时发车。票价2元。"
    assert restored["note"] == "票价未调整"
    # v1 against v3: nothing differs.
    open_view(editor, server, f"#history/{key}?from=1&to=3", "history")
    expect(editor.get_by_test_id("kb-diff").locator("td.diff-del, td.diff-ins")).to_have_count(0)
    editor.context.close()


def test_searches_that_found_nothing_open_a_prefilled_editor(browser, server):
    for _ in range(2):
        assert server.http.get("/api/v1/kb/search", params={"q": "火星基地"}).json() == []
    key = server.http.get("/api/v1/kb/search", params={"q": "社保卡挂失"}).json()[0]["key"]
    for _ in range(3):
        kb_api(server, "agent1", "POST", f"/articles/{key}/views", json={})
    editor = open_page(browser, server, "editor")
    editor.get_by_role("link", name="使用情况").click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "usage")
    viewed = editor.get_by_test_id("kb-most-viewed").locator("tbody tr").first
    expect(viewed).to_contain_text("3")
    gap = editor.get_by_test_id("kb-gaps").locator('tr[data-query="火星基地"]')
    expect(gap.locator("td").nth(1)).to_have_text("2")
    expect(gap).to_contain_text("仍无结果")
    shot(editor, "kb-usage")
    gap.get_by_role("link", name=re.compile("^为此写文章.*火星基地$")).click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "new")
    expect(editor.get_by_label("标题")).to_have_value("火星基地")
    expect(editor.locator(".kb-preview-card h3")).to_have_text("火星基地")
    editor.context.close()


def test_a_file_is_imported_with_its_bad_lines_reported_and_a_size_limit(browser, server):
    key = new_key()
    good = {
        "key": key,
        "title": "情侣路骑行指引",
        "body": "情侣路设有自行车道。",
        "category": "交通出行",
    }
    content = json.dumps(good, ensure_ascii=False) + "\n{broken\n"
    editor = open_page(browser, server, "editor")
    editor.get_by_role("link", name="导入").click()
    expect(editor.get_by_test_id("kb-view")).to_have_attribute("data-view", "import")
    files = editor.get_by_label("选择文件")
    editor.get_by_role("button", name="导入").click()
    expect(editor.get_by_role("alert")).to_have_text("请先选择文件。")
    files.set_input_files(
        {"name": "kb.jsonl", "mimeType": "application/x-ndjson", "buffer": content.encode()}
    )
    editor.get_by_role("button", name="导入").click()
    result = editor.get_by_test_id("kb-import-result")
    expect(result).to_contain_text("共 2 行：新增 1 篇")
    expect(result).to_contain_text("出错 1 行")
    errors = editor.get_by_test_id("kb-import-errors").locator("tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.locator("td").first).to_have_text("2")
    expect(errors.locator("td").nth(1)).to_contain_text("not valid JSON")
    expect(result).to_contain_text("已提交审核")
    shot(editor, "kb-import")
    # An upload goes through review like any change: agents see it once another editor approves.
    kb_api(server, "agent1", "GET", f"/articles/{key}", 404)
    result.get_by_role("link", name="查看待审核的文章").click()
    expect(
        editor.get_by_test_id("kb-article-list").locator(f'tr[data-key="{key}"]')
    ).to_be_visible()
    kb_api(server, "editor2", "POST", f"/articles/{key}/approve", json={"publish": True})
    assert kb_api(server, "agent1", "GET", f"/articles/{key}")["title"] == "情侣路骑行指引"
    open_view(editor, server, "#import", "import")
    files = editor.get_by_label("选择文件")

    limit = kb_api(server, "editor", "GET", "/import")["max_bytes"]
    files.set_input_files(
        {"name": "big.jsonl", "mimeType": "application/x-ndjson", "buffer": b" " * (limit + 1)}
    )
    editor.get_by_role("button", name="导入").click()
    expect(editor.get_by_role("alert")).to_contain_text("文件太大")
    expect(result).to_have_text("")
    # The server keeps the limit whatever the page does.
    refused = server.http.post(
        "/api/v1/kb/import",
        files={"file": ("big.jsonl", b" " * (limit + 1), "application/x-ndjson")},
        headers=server.headers("editor"),
    )
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] in ("kb.import_too_large", "request.too_large")
    editor.context.close()


def test_other_editors_work_arrives_live(browser, server):
    reviewer = open_page(browser, server, "editor2")
    reviewer.get_by_role("link", name="待审核").click()
    expect(reviewer.get_by_test_id("kb-view")).to_have_attribute("data-view", "review")
    wait_live(reviewer)
    mark_no_reload(reviewer)
    key = new_key()
    article = {"key": key, "title": "直播送审文章", "body": "正文。", "category": "其他"}
    kb_api(server, "editor", "POST", "/articles", 201, json=article)
    kb_api(server, "editor", "POST", f"/articles/{key}/submit")
    expect(
        reviewer.get_by_test_id("kb-article-list").locator(f'tr[data-key="{key}"]')
    ).to_be_visible()
    expect(reviewer.locator("#announcer")).to_contain_text(f"editor 提交了 {key} 待审核")

    reviewer.get_by_role("link", name="纠错").click()
    expect(reviewer.get_by_test_id("kb-view")).to_have_attribute("data-view", "flags")
    published = published_article(server, title="直播纠错文章", body="正文。", keywords=["直播"])
    kb_api(server, "agent1", "POST", f"/articles/{published}/flags", 201, json={"kind": "wrong"})
    expect(
        reviewer.get_by_test_id("kb-flags").locator(f'li[data-key="{published}"]')
    ).to_be_visible()
    assert_not_reloaded(reviewer)
    reviewer.context.close()


def test_an_agent_gets_only_the_search_on_the_kb_page(browser, server):
    agent = open_page(browser, server, "agent1")
    agent.goto(f"{server.url}/kb")
    expect(agent.get_by_test_id("kb-search")).to_be_visible()
    expect(agent.locator("#kb-tabs")).to_be_hidden()
    agent.get_by_test_id("kb-search").fill("社保卡挂失")
    result = agent.get_by_test_id("kb-results").locator("li").first
    expect(result.get_by_role("button", name="报告错误")).to_be_visible()
    expect(result.get_by_role("link")).to_have_count(0)
    agent.context.close()


@pytest.fixture(scope="module")
def axe_world(server):
    """An article in review with two versions, an open error report and a search gap."""
    table = "| 项目 | 说明 |\n|---|---|\n| 时间 | 9时 |"
    key = published_article(
        server, title="无障碍检查文章", body=f"第一版。\n\n{table}", keywords=["无障碍"]
    )
    kb_api(server, "agent1", "POST", f"/articles/{key}/flags", 201,
           json={"kind": "missing", "note": "缺少地址", "question": "在哪里办"})  # fmt: skip
    kb_api(server, "editor", "PUT", f"/articles/{key}", json={"body": "第二版。"})
    kb_api(server, "editor", "POST", f"/articles/{key}/submit")
    server.http.get("/api/v1/kb/search", params={"q": "水星签证"})
    return key


AXE_VIEWS = [
    ("list", ""),
    ("new", "#new"),
    ("review", "#review"),
    ("article", "#article/{key}"),
    ("edit", "#edit/{key}"),
    ("history", "#history/{key}"),
    ("flags", "#flags"),
    ("usage", "#usage"),
    ("import", "#import"),
    ("search", "#search"),
]


def test_axe_finds_no_serious_violations_on_any_kb_view(browser, server, axe_script, axe_world):
    # editor2 did not write the version in review: the article view shows the review form.
    page = open_page(browser, server, "editor2", bypass_csp=True)
    failures = {}
    for view, hash_ in AXE_VIEWS:
        open_view(page, server, hash_.format(key=axe_world), view)
        if view == "article":
            expect(page.get_by_role("button", name="通过并发布")).to_be_visible()
        if view == "flags":
            page.get_by_role("button", name="修改文章").first.click()
            expect(page.get_by_role("button", name="保存修改并关闭报告")).to_be_visible()
        if view == "search":
            page.get_by_test_id("kb-search").fill("社保卡")
            expect(page.get_by_test_id("kb-results").locator("li").first).to_be_visible()
        shot(page, f"kb-axe-{view}")
        violations = axe_violations(page, axe_script)
        if violations:
            failures[view] = violations
    # The dialog is part of the page too.
    open_view(page, server, f"#history/{axe_world}", "history")
    page.get_by_role("button", name=re.compile("^恢复此版本 v")).first.click()
    expect(page.locator("#action-dialog")).to_be_visible()
    violations = axe_violations(page, axe_script)
    if violations:
        failures["restore-dialog"] = violations
    assert failures == {}, failures
    page.context.close()
