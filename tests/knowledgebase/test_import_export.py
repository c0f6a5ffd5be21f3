"""``hotline kb import`` and ``hotline kb export`` (the Typer sub-app), and the sample seed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hotline.core import db
from knowledgebase import service
from knowledgebase.cli import kb_app
from knowledgebase.models import Article, ArticleVersion

runner = CliRunner()


@pytest.fixture
def sample_file(tmp_path, database):
    path = tmp_path / "kb.jsonl"
    path.write_text("\n".join(service.sample_lines()) + "\n", encoding="utf-8")
    return path


def count(model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_import_publishes_and_is_idempotent_by_key(sample_file, kb):
    first = runner.invoke(kb_app, ["import", str(sample_file)])
    assert first.exit_code == 0, first.output
    assert "30 lines: 30 new, 0 updated, 0 unchanged, 0 bad" in first.stdout
    assert kb.search("社保卡丢了怎么办")[0]["key"] == "KB-SB-001"
    assert kb.call("GET", "/articles/KB-HJ-002")["title"] == "新生儿入户"

    again = runner.invoke(kb_app, ["import", str(sample_file)])
    assert again.exit_code == 0 and "0 new, 0 updated, 30 unchanged" in again.stdout
    assert count(ArticleVersion) == 30

    records = [json.loads(line) for line in service.sample_lines()]
    records[0]["body"] += "补办也可在网上办事大厅申请。"
    records[1]["department"] = "C-HRSS"
    sample_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    changed = runner.invoke(kb_app, ["import", str(sample_file)])
    assert "0 new, 2 updated, 28 unchanged" in changed.stdout
    history = kb.call("GET", "/articles/KB-SB-001/history", "editor")
    assert [(v["number"], v["author"], v["note"]) for v in history["versions"]] == [
        (2, "import", "imported"),
        (1, "import", "imported"),
    ]
    assert history["published_version"] == 2 and history["status"] == "published"
    assert kb.call("GET", "/articles/KB-SB-002")["department"] == "C-HRSS"
    assert [h["key"] for h in kb.search("养老保险", department="C-HRSS")] == ["KB-SB-002"]


def test_bad_lines_are_reported_with_their_numbers_and_the_good_ones_kept(tmp_path, database):
    good = {"key": "KB-X-1", "category": "民政", "title": "临时救助", "keywords": ["救助"],
            "body": "生活困难可申请临时救助。"}  # fmt: skip
    lines = [
        json.dumps(good, ensure_ascii=False),
        "{not json",
        json.dumps({"key": "KB-X-2", "category": "民政", "body": "没有标题"}),
        "",
        "[1, 2]",
        json.dumps({**good, "key": "bad key!"}),
        json.dumps({**good, "key": "KB-X-3", "review_by": "2030-02-30"}),
        json.dumps({**good, "key": "KB-X-4", "title": "高龄津贴"}, ensure_ascii=False),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(kb_app, ["import", str(path), "--batch-size", "3"])
    assert result.exit_code == 1
    assert "2 new" in result.stdout and "5 bad" in result.stdout
    reported = [
        line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("line")
    ]
    assert reported == ["line 2", "line 3", "line 5", "line 6", "line 7"]
    assert "title" in result.stderr and "not valid JSON" in result.stderr
    with db.transaction() as session:
        keys = session.scalars(select(Article.key).order_by(Article.key)).all()
    assert keys == ["KB-X-1", "KB-X-4"]


def test_progress_is_reported_on_stderr_every_n_lines(tmp_path, database):
    records = [
        {"key": f"KB-P-{i}", "category": "民政", "title": f"事项{i}", "body": "内容。"}
        for i in range(5)
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    result = runner.invoke(kb_app, ["import", str(path), "--progress-every", "2"])
    assert result.exit_code == 0
    progress = [line for line in result.stderr.splitlines() if line.startswith("kb import:")]
    assert [line.split(":")[1].strip() for line in progress] == ["line 2", "line 4"]
    assert "2 new" in progress[0] and "articles/s" in progress[0]


def test_export_writes_the_import_format(sample_file, tmp_path):
    assert runner.invoke(kb_app, ["import", str(sample_file)]).exit_code == 0
    out = tmp_path / "out.jsonl"
    result = runner.invoke(kb_app, ["export", "--output", str(out)])
    assert result.exit_code == 0 and "exported 30 articles" in result.stderr
    # The sample is ordered by category, the export by key: same lines, byte for byte.
    assert sorted(out.read_text(encoding="utf-8").splitlines()) == sorted(service.sample_lines())
    to_stdout = runner.invoke(kb_app, ["export"])
    assert to_stdout.stdout == out.read_text(encoding="utf-8")


def test_seed_sample_loads_once(database):
    with db.transaction() as session:
        first = service.seed_sample(session)
    with db.transaction() as session:
        second = service.seed_sample(session)
    assert first == "knowledge base: 30 lines: 30 new, 0 updated, 0 unchanged, 0 bad"
    assert second == "knowledge base: 30 sample articles already loaded"
    assert count(ArticleVersion) == 30
