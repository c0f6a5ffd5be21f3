"""The README is part of the product: its settings table and commands must stay true."""

from pathlib import Path

from hotline.core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented():
    for name in Settings.model_fields:
        assert f"`HOTLINE_{name.upper()}`" in README, f"HOTLINE_{name.upper()} missing from README"


def test_the_two_commands_exist():
    root = Path(__file__).resolve().parents[2]
    assert "./scripts/demo" in README and "./scripts/test" in README
    assert (root / "scripts" / "demo").exists() and (root / "scripts" / "test").exists()
