"""What the KPI tests send and read through the API: call events in, answer rates out."""

from __future__ import annotations

CTI = {"X-CTI-Token": "development-cti-token"}


def post_events(client, events, *, all_accepted: bool = False) -> dict:
    """POST a batch of call events; ``all_accepted``: none may be rejected either."""
    response = client.post("/api/v1/calls/events", json=events, headers=CTI)
    assert response.status_code == 200, response.text
    if all_accepted:
        assert response.json()["rejected"] == 0, response.json()
    return response.json()


def rate(client, headers, start, end, queue=None) -> dict:
    params = {"start": start.isoformat(), "end": end.isoformat()}
    if queue:
        params["queue"] = queue
    response = client.get("/api/v1/kpi/answer-rate", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()
