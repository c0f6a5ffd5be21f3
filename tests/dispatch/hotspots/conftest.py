"""The ticket API fixtures (a cast of users, the ``desk`` helper) for the hot-spot tests."""

from tests.dispatch.tickets.conftest import (  # noqa: F401 - fixtures
    cheap_passwords,
    desk,
    reference,
)
