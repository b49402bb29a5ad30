"""Network volumes and registries as records (endpoints/volumes.py). Pure."""

from __future__ import annotations

import pytest

from podium.endpoints.volumes import NetworkVolume, Registry, new_volume_id, volume_dir
from podium.errors import BadRequest


def test_a_volume_lives_in_the_root_under_its_id():
    vid = new_volume_id()
    assert volume_dir("/mnt/nfs/volumes", vid) == f"/mnt/nfs/volumes/{vid}"


@pytest.mark.parametrize("bad", ["../etc", "vol_../../x", "/abs", "vol_ABCDEFGHIJ", "vol_a", ""])
def test_no_id_leads_out_of_the_root(bad):
    with pytest.raises(BadRequest, match="not a network volume id"):
        volume_dir("/mnt/volumes", bad)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"size": 9}, "`size` must be between 10 and 4096"),
        ({"size": 5000}, "`size` must be between 10 and 4096"),
        ({"name": ""}, "`name` must be 1 to 191"),
        ({"name": "a\x00b"}, "`name` may not contain a NUL"),
        ({"type": "FAST"}, "`type` must be STANDARD or HIGH_PERFORMANCE"),
        ({"data_center": ""}, "`dataCenter` must be 1 to 100"),
    ],
)
def test_volume_validation_names_the_field(changes, problem):
    fields = {"id": new_volume_id(), "name": "v", "size": 10, "data_center": "here", **changes}
    with pytest.raises(BadRequest, match=problem.replace("`", "`")):
        NetworkVolume(**fields).validate()


def test_records_round_trip_and_show_runpods_fields():
    v = NetworkVolume(new_volume_id(), "models", 50, "EU-RO-1", "HIGH_PERFORMANCE", 1.0)
    assert NetworkVolume.from_doc(v.to_doc()) == v
    assert v.public() == {
        "id": v.id, "name": "models", "size": 50, "dataCenter": "EU-RO-1",
        "type": "HIGH_PERFORMANCE",
    }  # fmt: skip
    r = Registry("reg_abcdefghij", "ghcr", "me", 1.0)
    assert Registry.from_doc(r.to_doc()) == r and r.public() == {"id": r.id, "name": "ghcr"}
