"""Understanding requests: the corpus, the classifier, the text-only rule, model versions."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from dispatch.routing import classifier, service, training
from dispatch.routing.ruleset import load_reference
from hotline.core import db

MATTERS = yaml.safe_load((classifier.REFERENCE_DIR / "matters.yaml").read_text("utf-8"))["matters"]
URGENT = {m["code"] for m in MATTERS if m.get("urgent")}


# -- the corpus --------------------------------------------------------------------------------


def test_every_sample_matter_has_training_and_heldout_requests():
    # The corpus covers the 53 sample matters; the matters grown from the taxonomy have no
    # examples yet and are suggested by their keywords (test_catalogue_tree).
    train = Counter(e.matter_code for e in classifier.load_corpus("train"))
    heldout = Counter(e.matter_code for e in classifier.load_corpus("heldout"))
    covered = set(train) | set(heldout)
    assert len(covered) == 53
    for code in covered:
        assert train[code] >= 25, code
        assert heldout[code] >= 8, code
    assert covered <= {m["code"] for m in MATTERS}


def test_heldout_requests_are_never_trained_on():
    train = {classifier.normalise(e.text) for e in classifier.load_corpus("train")}
    heldout = [
        e for e in classifier.load_corpus("heldout") if classifier.normalise(e.text) in train
    ]
    assert heldout == []


def test_registers_are_known():
    assert {e.register for e in classifier.load_corpus()} <= set(classifier.REGISTERS)


def test_the_lexicon_adds_the_standard_word():
    assert "电梯" in classifier.expand("升降机成日坏")
    assert "燃气" in classifier.expand("燃汽好像漏了")
    assert "电梯" in classifier.word_features("升降机成日坏")


# -- the shipped model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return classifier.shipped_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def suggester(shipped):
    from dispatch.routing.suggest import MatterSuggester, ModelSuggester

    ruleset = load_reference()
    return ModelSuggester(
        ruleset,
        shipped,
        MatterSuggester(ruleset),
        confidence_threshold=0.35,
        urgent_threshold=0.08,
        catch_all="QT-01",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("升降机成日坏", "SC-05"),
        ("燃汽好像漏了", "RQ-01"),
        ("管理处一年到头不做事", "ZJ-01"),
        ("老板欠了我们三个月人工", "RS-01"),
        ("我是自己做生意的想自己交社保", "RS-03"),
        ("楼下停电了", "GD-01"),
    ],
)
def test_the_misses_of_the_keyword_suggester_are_understood(suggester, text, expected):
    assert suggester.suggest(text)[0].code == expected


def test_heldout_accuracy_and_urgent_recall(suggester):
    heldout = classifier.load_corpus("heldout")
    top1 = sum(suggester.suggest(e.text)[0].code == e.matter_code for e in heldout) / len(heldout)
    urgent = [e for e in heldout if e.matter_code in URGENT]
    shown = sum(e.matter_code in {s.code for s in suggester.suggest(e.text)[:4]} for e in urgent)
    assert top1 >= 0.85
    assert shown / len(urgent) >= 0.98


def test_unsure_text_offers_the_catch_all_beside_the_top_three(suggester):
    for text in ("那个东西又坏了", "你好有个事"):
        understanding = suggester.understand(text)
        assert understanding.low_confidence, text
        first = understanding.suggestions[:4]  # matters the model never saw may follow
        codes = [s.code for s in first]
        # Three real matters and the catch-all, whatever the catch-all's own rank ...
        assert "QT-01" in codes and len(set(codes)) == 4, (text, codes)
        # ... in order of likelihood, so the one key takes the likeliest.
        scores = [s.score for s in first]
        assert scores == sorted(scores, reverse=True), (text, codes, scores)


def test_confidences_are_probabilities_in_order(suggester):
    found = suggester.suggest("小区门口天天有人摆摊卖菜", limit=5)
    assert found[0].code == "CG-01" and not found[0].urgent
    assert all(0 <= s.score <= 1 for s in found)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)


def test_urgent_matters_are_flagged(suggester):
    assert suggester.suggest("电梯困人了")[0].urgent


# -- the text decides the matter, the address the place --------------------------------------


@pytest.fixture
def staff(database, make_user):
    with db.transaction() as session:
        service.seed_reference(session)
    return make_user("agent1", "agent")


def _preview(client, headers, text, address):
    response = client.post(
        "/api/v1/routing/preview", json={"text": text, "address": address}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("text", ["楼下停电了", "小区垃圾没人收", "有人在天台加建", "隔壁工地好嘈"])
def test_changing_only_the_address_never_changes_the_matter(client, staff, text):
    addresses = [
        "",
        "拱北街道燃气公司宿舍",
        "香洲区电梯厂宿舍",
        "斗门区白蕉镇工地旁",
        "金湾区公安局",
    ]
    seen = {
        tuple(s["code"] for s in _preview(client, staff, text, a)["suggestions"]) for a in addresses
    }
    assert len(seen) == 1


def test_a_power_cut_at_a_gas_company_dormitory_is_a_power_matter(client, staff):
    result = _preview(client, staff, "楼下停电了", "拱北街道燃气公司宿舍")
    assert result["matter"]["code"] == "GD-01" and result["suggested_by"] == "model"


def test_the_suggest_route_carries_confidence_and_urgency(client, staff):
    response = client.get("/api/v1/routing/suggest", params={"q": "燃汽好像漏了"}, headers=staff)
    assert response.status_code == 200
    first = response.json()[0]
    assert first["code"] == "RQ-01" and first["urgent"] is True and first["low_confidence"] is False


# -- model versions, feedback, rollback ---------------------------------------------------------


@pytest.fixture
def people(database, make_user):
    with db.transaction() as session:
        service.seed_reference(session)
    # A department user must belong to a department (hotline.core.auth refuses one without).
    return {
        role: make_user(
            f"{role}1", role, departments=("XZ-MARKET",) if role == "department" else ()
        )
        for role in ("admin", "agent", "dispatcher", "supervisor", "department")
    }


def test_model_routes_are_for_admins_only(client, people, small_models):
    for role in ("agent", "dispatcher", "supervisor", "department"):
        headers = people[role]
        assert client.get("/api/v1/routing/models", headers=headers).status_code == 403
        assert client.post("/api/v1/routing/models/train", headers=headers).status_code == 403
        assert client.post("/api/v1/routing/models/1/activate", headers=headers).status_code == 403
    assert client.get("/api/v1/routing/models").status_code == 401
    assert client.get("/api/v1/routing/models", headers=people["admin"]).json() == []
    missing = client.post("/api/v1/routing/models/99/activate", headers=people["admin"])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "routing.unknown_model"


def _suggested(client, headers, text):
    response = client.get("/api/v1/routing/suggest", params={"q": text}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()[0]["code"]


def test_a_correction_teaches_the_next_model_and_a_rollback_forgets_it(
    client, people, run_jobs, small_models
):
    admin, agent, dispatcher = people["admin"], people["agent"], people["dispatcher"]
    text = "楼下那个仓库天天半夜有货车进出搬东西"
    train = client.post("/api/v1/routing/models/train", headers=admin)
    assert train.status_code == 202
    assert run_jobs() == 1
    [first] = client.get("/api/v1/routing/models", headers=admin).json()
    assert first["active"] and first["trained_on"]["feedback"] == 0
    assert first["metrics"]["count"] > 0
    before = _suggested(client, agent, text)
    corrected = "YJ-02" if before != "YJ-02" else "HB-03"

    created = client.post(
        "/api/v1/tickets",
        json={"channel": "phone", "content": text, "address": "香洲区拱北街道"},
        headers=agent,
    )
    assert created.status_code in (200, 201), created.text
    ticket = created.json()
    dispatched = client.post(
        f"/api/v1/tickets/{ticket['number']}/dispatch",
        json={
            "department": ticket["lead_department"],
            "matter_code": corrected,
            "version": ticket["version"],
        },
        headers=dispatcher,
    )
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["matter_code"] == corrected
    assert _suggested(client, agent, text) == before  # learnt only when retrained

    assert client.post("/api/v1/routing/models/train", headers=admin).status_code == 202
    assert run_jobs() == 1
    versions = client.get("/api/v1/routing/models", headers=admin).json()
    assert [v["active"] for v in versions] == [True, False]
    assert versions[0]["trained_on"]["feedback"] == 1
    assert _suggested(client, agent, text) == corrected

    rollback = client.post(f"/api/v1/routing/models/{first['id']}/activate", headers=admin)
    assert rollback.status_code == 200 and rollback.json()["active"]
    assert _suggested(client, agent, text) == before


def test_the_nightly_training_runs_and_asks_for_the_next_night(people, run_jobs, small_models):
    from datetime import UTC, datetime

    from rq import Queue

    from hotline.core.jobs import safe_job_id
    from hotline.core.redis import get_redis

    with db.transaction() as session:
        at = training.schedule_nightly(session, now=datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert at.hour == 3 and at.date().isoformat() == "2026-01-02"
    assert run_jobs() == 1  # that night is past: due at once
    with db.transaction() as session:
        assert [v.created_by for v in training.list_versions(session) if v.active] == ["system"]
    next_night = training.next_nightly_run().date().isoformat()
    run_jobs()  # relays the next night's request to rq's schedule, not yet due
    scheduled = Queue("default", connection=get_redis()).scheduled_job_registry.get_job_ids()
    assert safe_job_id(f"matter-model-nightly:{next_night}") in scheduled
