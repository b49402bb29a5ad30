"""Templates (endpoints/templates.py): the command line and env of an endpoint's workers."""

from __future__ import annotations

import pytest

from podium.endpoints import EndpointSpec
from podium.endpoints.templates import launch_for


@pytest.mark.parametrize("model", [None, "tiny"])
def test_sd15_command(model):
    spec = EndpointSpec(name="sd", template_id="sd15", model=model)
    launch = launch_for(spec, None, python="py")
    assert launch.argv == (
        "py",
        "-m",
        "podium.worker",
        "--template",
        "sd15",
        "--model",
        model or "auto",
    )
