"""The runpod SDK's management calls, unmodified, against Podium: create_template,
create_endpoint, get_endpoints and update_endpoint_template speak GraphQL to
RUNPOD_API_BASE_URL/graphql with the admin key; everything else is refused."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import Gateway
from tests.runpod_compat.harness import RUNPOD_MARKS, SdkDriver

pytestmark = RUNPOD_MARKS


def test_create_template_and_endpoint_list_and_update(gw: Gateway, sdk: SdkDriver) -> None:
    name = f"sdk-{uuid.uuid4().hex[:6]}"
    out = sdk.ok(
        "manage",
        key=gw.admin_key,
        template_name=name,
        endpoint_name=f"{name}-ep",
        command="python handler.py --port 1",
    )
    template, endpoint = out["template"], out["endpoint"]
    assert template["id"].startswith("tpl_") and template["name"] == name
    assert template["dockerArgs"] == "python handler.py --port 1"
    assert template["imageName"] == "runpod/base:0.6.2"
    assert template["env"] == [{"key": "GREETING", "value": "hi"}]
    assert endpoint["templateId"] == template["id"] and endpoint["workersMax"] == 2
    assert endpoint["gpuIds"] == "16GB"  # the SDK's default pool, AMPERE_16
    mine = [e for e in out["listed"] if e["id"] == endpoint["id"]]
    assert len(mine) == 1 and mine[0]["name"] == f"{name}-ep"
    assert mine[0]["createdAt"].endswith("Z")
    assert out["updated"] == {"id": endpoint["id"], "templateId": out["other"]["id"]}
    with gw.client() as c:
        rest = c.get(f"/v1/endpoints/{endpoint['id']}", params={"includeTemplate": "true"})
        assert rest.json()["template"]["command"] == "python handler.py --port 1"
        assert rest.json()["templateId"] == out["other"]["id"]
        tpl = c.get(f"/v1/templates/{template['id']}").json()
        assert tpl["env"] == {"GREETING": "hi"} and tpl["imageName"] == "runpod/base:0.6.2"


def test_other_operations_and_keys_are_refused(gw: Gateway, sdk: SdkDriver) -> None:
    reply = sdk.call("graphql_error", key=gw.admin_key, call="get_gpus")
    assert not reply["ok"] and reply["type"] == "QueryError"
    assert "runpod SDK 1.12" in reply["error"] and "gpuTypes" in reply["error"]
    reply = sdk.call("graphql_error", key=gw.admin_key, call="get_pods")
    assert not reply["ok"] and "is not one of them" in reply["error"]
    reply = sdk.call("graphql_error", key="pk_wrong", call="get_endpoints")
    assert not reply["ok"] and reply["type"] == "AuthenticationError"
    with gw.client() as c:
        run_key = c.post("/v1/keys", json={"scopes": ["run"]}).json()["key"]
    reply = sdk.call("graphql_error", key=run_key, call="get_endpoints")
    assert not reply["ok"] and reply["type"] == "QueryError" and "admin" in reply["error"]
    # An image alone is a whole template (its own CMD runs); a name that is no image is not.
    reply = sdk.call(
        "graphql_error", key=gw.admin_key, call="create_template", args=["img-only", "img"]
    )
    assert reply["ok"] and reply["result"]["imageName"] == "img", reply
    reply = sdk.call(
        "graphql_error", key=gw.admin_key, call="create_template", args=["bad", "Not An Image"]
    )
    assert not reply["ok"] and "imageName" in reply["error"], reply
