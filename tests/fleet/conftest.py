"""The in-process gateway fixture (`api`) of tests/gateway, for the admin API tests here."""

from tests.gateway.conftest import api  # noqa: F401
