import pytest
from pydantic import ValidationError

from hotline.core.settings import DEVELOPMENT_SECRET_KEY, Settings


def test_default_secret_refused_in_production(monkeypatch):
    monkeypatch.setenv("HOTLINE_ENV", "production")
    monkeypatch.delenv("HOTLINE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HOTLINE_SECRET_KEY"):
        Settings()


def test_production_accepts_a_real_secret(monkeypatch):
    monkeypatch.setenv("HOTLINE_ENV", "production")
    monkeypatch.setenv("HOTLINE_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("HOTLINE_CTI_TOKEN", "y" * 40)
    monkeypatch.setenv("HOTLINE_SMS_SENDER", "http")
    monkeypatch.setenv("HOTLINE_SMS_GATEWAY_URL", "https://sms.example.gov.cn/send")
    assert Settings().secret_key.get_secret_value() != DEVELOPMENT_SECRET_KEY


def test_embedded_defaults_live_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("HOTLINE_REDIS_URL", raising=False)
    settings = Settings()
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path}/hotline.db"
    assert settings.uses_embedded_redis
    assert settings.tz.key == "Asia/Shanghai"


def test_plain_postgres_url_uses_psycopg3(monkeypatch):
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql://u@h:5432/d")
    assert Settings().sqlalchemy_url == "postgresql+psycopg://u@h:5432/d"
