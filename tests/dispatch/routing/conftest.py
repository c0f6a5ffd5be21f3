"""Fixtures of routing tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatch.routing.resolver import LocationResolver
from dispatch.routing.ruleset import RuleSet, load_reference
from hotline.core.settings import get_settings


@pytest.fixture
def small_models(monkeypatch) -> Iterator[None]:
    """Matter models trained on a few shipped examples per matter: seconds, not tens of them."""
    monkeypatch.setenv("HOTLINE_MATTER_MODEL_CORPUS_LIMIT", "4")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    """The shipped reference data, as `hotline seed` loads it."""
    return load_reference()


@pytest.fixture(scope="module")
def resolver(ruleset: RuleSet) -> LocationResolver:
    return LocationResolver(ruleset)
