"""`gpuIds` (endpoints/gpu_ids.py): GPU indices, a minimum memory or type names."""

from __future__ import annotations

import pytest

from podium.endpoints.gpu_ids import GpuRequest, parse_gpu_ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", GpuRequest()),
        ("  ", GpuRequest()),
        ("0", GpuRequest(indices=(0,))),
        ("0,1", GpuRequest(indices=(0, 1))),
        (" 2, 0 ,2", GpuRequest(indices=(2, 0))),
        ("24GB", GpuRequest(min_memory_mb=24000)),
        ("24 GB", GpuRequest(min_memory_mb=24000)),
        ("80gb", GpuRequest(min_memory_mb=80000)),
        ("16GiB", GpuRequest(min_memory_mb=16384)),
        ("20000MB", GpuRequest(min_memory_mb=20000)),
        ("7.5G", GpuRequest(min_memory_mb=7500)),
        ("A100", GpuRequest(names=("A100",))),
        ("A100, RTX 4090", GpuRequest(names=("A100", "RTX 4090"))),
        ("abc", GpuRequest(names=("abc",))),
    ],
)
def test_parse_gpu_ids(text, expected):
    assert parse_gpu_ids(text) == expected


@pytest.mark.parametrize("text", ["0,x", "24TB", "-1", "0;1", "A100!", "A100,,H100"])
def test_parse_gpu_ids_rejects(text):
    with pytest.raises(ValueError, match="gpuIds"):
        parse_gpu_ids(text)
