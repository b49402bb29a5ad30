"""`podium deploy --image/--volume/--registry`, `podium volumes ...` and
`podium registries ...` (cli/resources.py)."""

from __future__ import annotations

import json
import stat

from podium.cli import app as cli_app


def test_volumes_create_list_and_delete(cli):
    r = cli("volumes", "create", "models", "--size", "20", "--json")
    assert r.exit_code == 0, r.output
    volume = json.loads(r.stdout)
    assert volume["id"].startswith("vol_") and volume["size"] == 20
    assert (cli.data_dir / "volumes" / volume["id"]).is_dir()  # PODIUM_VOLUME_ROOT's default
    listed = json.loads(cli("volumes", "list", "--json").stdout)
    assert [v["id"] for v in listed] == [volume["id"]]
    assert volume["id"] in cli("volumes", "list").stdout
    assert cli("volumes", "delete", volume["id"]).exit_code == 0
    assert json.loads(cli("volumes", "list", "--json").stdout) == []
    assert not (cli.data_dir / "volumes" / volume["id"]).exists()


def test_a_volume_out_of_range_is_refused_with_runpods_reason(cli):
    r = cli("volumes", "create", "huge", "--size", "5000")
    assert r.exit_code == 1 and "400" in r.stderr and "size" in r.stderr


def test_registry_password_from_stdin_is_stored_in_a_private_file(cli):
    r = cli.runner.invoke(
        cli_app,
        ["registries", "create", "ghcr", "--username", "me", "--password-stdin", "--json"],
        input="s3cret-token\n",
        env={"PODIUM_URL": "http://testserver", "PODIUM_API_KEY": cli.admin_key},
    )
    assert r.exit_code == 0, r.output
    registry = json.loads(r.stdout)
    assert registry == {"id": registry["id"], "name": "ghcr"}  # never the credentials
    stored = cli.data_dir / "registries" / f"{registry['id']}.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["password"] == "s3cret-token"
    assert "s3cret" not in cli("registries", "list").stdout


def test_a_registry_without_a_password_is_a_usage_error(cli):
    r = cli("registries", "create", "ghcr", "--username", "me")
    assert r.exit_code == 2 and "--password-stdin" in r.stderr


def test_deploy_an_image_with_a_volume_and_a_registry(cli):
    volume = json.loads(cli("volumes", "create", "data", "--json").stdout)
    registry = json.loads(
        cli(
            "registries", "create", "r", "--username", "u", "--json", PODIUM_REGISTRY_PASSWORD="p"
        ).stdout
    )
    r = cli(
        "deploy",
        "--image",
        "registry.example.com/team/worker:1.2",
        "--volume",
        volume["id"],
        "--registry",
        registry["id"],
        "--workers-max",
        "0",
        "--json",
    )
    assert r.exit_code == 0, r.output
    ep = json.loads(r.stdout)
    assert ep["name"] == "worker" and ep["templateId"] is None
    assert ep["imageName"] == "registry.example.com/team/worker:1.2"
    assert ep["networkVolumeId"] == volume["id"]
    assert ep["containerRegistryAuthId"] == registry["id"]
    # what an endpoint names cannot go from under it
    r = cli("volumes", "delete", volume["id"])
    assert r.exit_code == 1 and ep["id"] in r.stderr
    r = cli("registries", "delete", registry["id"])
    assert r.exit_code == 1 and ep["id"] in r.stderr
    text = cli("deploy", "--image", "team/other:2", "--workers-max", "0").stdout
    assert "image team/other:2" in text
    # by name, as people remember them
    r = cli("deploy", "--image", "team/w:3", "--volume", "data", "--registry", "r", "--json")
    assert r.exit_code == 0, r.output
    ep = json.loads(r.stdout)
    assert (ep["networkVolumeId"], ep["containerRegistryAuthId"]) == (volume["id"], registry["id"])
    r = cli("endpoints", "update", ep["id"], "--volume", "nosuch")
    assert r.exit_code == 1 and "no network volume is named 'nosuch'" in r.stderr


def test_deploy_needs_a_template_or_an_image(cli):
    r = cli("deploy", "--workers-max", "0")
    assert r.exit_code == 2 and "--image" in r.stderr
    r = cli("deploy", "--image", "Not An Image", "--workers-max", "0")
    assert r.exit_code == 1 and "imageName" in r.stderr
    r = cli("deploy", "--image", "team/w:1", "--volume", "vol_nosuchvol", "--workers-max", "0")
    assert r.exit_code == 1 and "networkVolumeId" in r.stderr
