"""FleetSettings: the backend choice (`--fleet`, PODIUM_FLEET) and Ray's address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from podium.fleet.settings import FleetSettings


def test_local_is_the_default_and_ray_joins_this_machines_cluster():
    assert FleetSettings.from_env({}).backend == "local"
    assert not FleetSettings.from_env({}).ray
    ray = FleetSettings.from_env({"PODIUM_FLEET": "ray"})
    assert ray.ray and ray.ray_init_address == "auto"


def test_ray_address_is_honoured_and_ray_client_urls_pass_through():
    env = {"PODIUM_FLEET": "ray", "RAY_ADDRESS": "10.0.0.5:6379"}
    assert FleetSettings.from_env(env).ray_init_address == "10.0.0.5:6379"
    client = FleetSettings.from_env({"RAY_ADDRESS": "x:1"}, backend="ray://head:10001")
    assert client.ray and client.ray_init_address == "ray://head:10001"


@pytest.mark.parametrize("value", ["kubernetes", "ray://", "Ray"])
def test_an_unknown_backend_names_the_choices(value):
    with pytest.raises(ValidationError, match="'local', 'ray' or 'ray://HOST:PORT'"):
        FleetSettings.from_env({"PODIUM_FLEET": value})
