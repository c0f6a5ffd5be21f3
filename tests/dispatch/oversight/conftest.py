"""The ticket tests' cast and clock (tests/dispatch/tickets/conftest.py) serve here too."""

from tests.dispatch.tickets.conftest import (  # noqa: F401 - fixtures, found by name
    Clock,
    Desk,
    cheap_passwords,
    clock,
    desk,
    reference,
)
