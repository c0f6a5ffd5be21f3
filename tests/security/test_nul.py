"""NUL characters are refused with 422 in every text input, forms included (issue 17, item 6).

PostgreSQL cannot store U+0000 in text: a raw 0x00 byte in a urlencoded or multipart form
used to reach the database and answer 500 there (and be stored on SQLite).
"""

from __future__ import annotations

import pytest

TOKEN_URL = "/api/v1/auth/token"


def _assert_refused(response) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert "NUL" in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"username=p_agent\x00&password=x", b"username=a&password=\x00"])
def test_a_raw_nul_in_a_urlencoded_form_is_refused(client, raw):
    response = client.post(
        TOKEN_URL, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _assert_refused(response)


def _multipart(fields: dict[str, bytes], files: dict[str, bytes] | None = None) -> tuple:
    boundary = "Hotline-Boundary-0123"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    for name, value in (files or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _open311_fields(description: bytes) -> dict[str, bytes]:
    return {
        "service_code": b"SC-01",
        "description": description,
        "address_string": "香洲区拱北夏湾".encode(),
        "phone": b"13812341234",
    }


def test_a_nul_in_a_multipart_text_field_is_refused(client):
    body, headers = _multipart(_open311_fields(b"a\x00b"))
    _assert_refused(client.post("/open311/v2/requests.json", content=body, headers=headers))


def test_a_multipart_file_may_carry_nul_bytes(client):
    """An uploaded file is binary (Open311's "media" part, which is not kept): not text."""
    body, headers = _multipart(
        _open311_fields("商家不退款".encode()), files={"media": b"\xff\xd8\x00\x00\x10JFIF"}
    )
    response = client.post("/open311/v2/requests.json", content=body, headers=headers)
    assert response.status_code != 422, response.text
    assert response.status_code < 500, response.text


def test_a_urlencoded_open311_request_with_a_raw_nul_is_refused(client):
    raw = "service_code=SC-01&address_string=拱北&description=a\x00b".encode()
    response = client.post(
        "/open311/v2/requests.json",
        content=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_refused(response)
