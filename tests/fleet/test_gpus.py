"""GPU discovery with injected inputs, and assignment: never one GPU for two workers."""

from __future__ import annotations

import pytest

from podium.board import Gpu, Inventory
from podium.endpoints.gpu_ids import GpuRequest, parse_gpu_ids
from podium.fleet import gpus as gpus_mod
from podium.fleet.gpus import assign, discover, eligible, parse_nvidia_smi, why_throttled

NVIDIA_SMI = """\
0, NVIDIA GeForce RTX 4090, 24564
1, NVIDIA A100-SXM4-80GB, 81920
2, Tesla T4, 15360
"""
MIXED = Inventory(tuple(parse_nvidia_smi(NVIDIA_SMI)), "test")
FOUR_4090 = Inventory(tuple(Gpu(i, "RTX 4090", 24564) for i in range(4)), "test")


def test_parse_nvidia_smi():
    assert parse_nvidia_smi(NVIDIA_SMI) == [
        Gpu(0, "NVIDIA GeForce RTX 4090", 24564),
        Gpu(1, "NVIDIA A100-SXM4-80GB", 81920),
        Gpu(2, "Tesla T4", 15360),
    ]


def test_parse_nvidia_smi_skips_noise_and_keeps_commas_in_names():
    text = "No devices were found\n\n3, Some, Odd Name, 1024\n"
    assert parse_nvidia_smi(text) == [Gpu(3, "Some, Odd Name", 1024)]


def test_24gb_matches_a_4090_as_nvidia_smi_reports_it():
    fit = eligible(MIXED, parse_gpu_ids("24GB"))
    assert [g.index for g in fit] == [0, 1]  # smallest first: keep the A100 for big jobs
    assert [g.index for g in eligible(MIXED, parse_gpu_ids("80GB"))] == [1]


def test_type_names_match_part_of_the_gpu_name_case_insensitively():
    assert [g.index for g in eligible(MIXED, parse_gpu_ids("a100,T4"))] == [2, 1]
    assert [g.index for g in eligible(MIXED, parse_gpu_ids("RTX 4090"))] == [0]
    assert eligible(MIXED, parse_gpu_ids("H100")) == []


def test_assign_never_hands_one_gpu_to_two_workers():
    in_use: set[int] = set()
    given = []
    for _ in range(4):
        got = assign(FOUR_4090, GpuRequest(), 1, in_use)
        assert got is not None
        assert not set(got) & in_use
        in_use |= set(got)
        given.append(got)
    assert sorted(given) == [(0,), (1,), (2,), (3,)]
    assert assign(FOUR_4090, GpuRequest(), 1, in_use) is None  # throttled


def test_assign_several_gpus_per_worker():
    assert assign(FOUR_4090, GpuRequest(), 2, set()) == (0, 1)
    assert assign(FOUR_4090, GpuRequest(), 2, {0, 1}) == (2, 3)
    assert assign(FOUR_4090, GpuRequest(), 2, {0, 2, 3}) is None
    assert assign(FOUR_4090, GpuRequest(), 3, {1}) == (0, 2, 3)


def test_assign_respects_indices_and_memory():
    assert assign(MIXED, GpuRequest(indices=(1, 2)), 1, set()) == (2,)  # T4 is smaller
    assert assign(MIXED, GpuRequest(indices=(1, 2)), 1, {2}) == (1,)
    assert assign(MIXED, GpuRequest(indices=(1, 2)), 1, {1, 2}) is None
    assert assign(MIXED, GpuRequest(min_memory_mb=24000), 1, {0}) == (1,)
    assert assign(MIXED, GpuRequest(min_memory_mb=100_000), 1, set()) is None


def test_cpu_only_inventory_gives_cpu_workers():
    cpu = Inventory((), "none", "warning")
    assert assign(cpu, GpuRequest(indices=(0,)), 1, set()) == ()
    assert assign(cpu, GpuRequest(), 1, set()) == ()


def test_why_throttled_tells_busy_from_impossible():
    assert "held by another worker" in why_throttled(MIXED, GpuRequest(), 1)
    message = why_throttled(MIXED, GpuRequest(min_memory_mb=100_000), 1)
    assert "match gpuIds" in message and "A100" in message


def test_discover_from_configuration():
    inv = discover("0, Fake GPU, 24576; 1, Fake GPU, 24576")
    assert inv.source == "config" and [g.index for g in inv.gpus] == [0, 1]
    none = discover("none")
    assert none.cpu_only and none.warning and "CPU" in none.warning
    with pytest.raises(ValueError, match="PODIUM_GPUS"):
        discover("garbage")


def test_discover_prefers_nvidia_smi(monkeypatch):
    monkeypatch.setattr(gpus_mod.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    calls = []

    def run(argv, timeout):
        calls.append(argv)
        return NVIDIA_SMI

    inv = discover(None, run=run)
    assert inv.source == "nvidia-smi" and len(inv.gpus) == 3 and inv.warning is None
    assert calls[0][1:] == list(gpus_mod.NVIDIA_SMI_ARGS)


def test_discover_falls_back_to_torch_then_cpu(monkeypatch):
    monkeypatch.setattr(gpus_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(gpus_mod.importlib.util, "find_spec", lambda name: object())
    inv = discover(None, run=lambda argv, timeout: "0, NVIDIA H100 80GB HBM3, 81559\n")
    assert inv.source == "torch" and inv.gpus == (Gpu(0, "NVIDIA H100 80GB HBM3", 81559),)
    cpu = discover(None, run=lambda argv, timeout: "")  # torch without CUDA
    assert cpu.cpu_only and cpu.source == "none" and "CPU" in (cpu.warning or "")
    failed = discover(None, run=lambda argv, timeout: None)
    assert failed.cpu_only
