"""/healthz reports the state of the database, Redis and workers; /metrics is Prometheus."""

import pytest

from hotline.core.redis import ensure_embedded_redis, reset_clients, stop_embedded_redis
from hotline.core.settings import get_settings


def test_healthy_system(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["workers"]["count"] == 0 and body["status"] == "no_workers"
    assert body["degraded"] == []


def test_every_error_is_json(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    bad = client.get("/api/v1/events?after=-1", headers={"Authorization": "Bearer x"})
    assert bad.status_code in (401, 422)
    assert "error" in bad.json()


def test_metrics_and_openapi(client):
    client.get("/healthz")
    assert client.get("/api/v1/calls/c-secret-77").status_code == 401
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'hotline_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    # Labelled by the route's template and the status sent, never by the raw path.
    assert (
        'hotline_http_requests_total{method="GET",route="/api/v1/calls/{call_id}",status="401"}'
        in metrics.text
    )
    assert "c-secret-77" not in metrics.text
    assert client.get("/openapi.json").json()["info"]["title"].startswith("12345")
    assert client.get("/docs").status_code == 200


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    data_dir = tmp_path / "redis"
    socket_path = ensure_embedded_redis(data_dir)
    monkeypatch.setenv("HOTLINE_REDIS_URL", f"unix://{socket_path}")
    get_settings.cache_clear()
    reset_clients()
    yield data_dir
    stop_embedded_redis(data_dir)
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_clients()


def test_health_turns_503_while_redis_is_down_and_recovers_without_restart(private_redis, client):
    assert client.get("/healthz").status_code == 200
    stop_embedded_redis(private_redis)
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["status"] == "degraded" and down.json()["redis"]["ok"] is False
    assert down.json()["degraded"] == ["redis"] and "outbox" in down.json()["message"]
    ensure_embedded_redis(private_redis)
    assert client.get("/healthz").status_code == 200


def test_start_up_builds_the_tokenizers_and_takes_its_objects_out_of_the_collector(
    app, monkeypatch
):
    import gc

    from fastapi.testclient import TestClient

    from dispatch.routing import suggest
    from knowledgebase import search

    monkeypatch.setattr(suggest, "_shared_tokenizer", None)
    monkeypatch.setattr(search, "_tokenizer", None)
    gc.unfreeze()
    with TestClient(app) as started:
        assert started.get("/healthz").status_code == 200
        assert suggest._shared_tokenizer is not None and search._tokenizer is not None
        assert gc.get_freeze_count() > 10_000
