"""The pure half of snapshot cold starts (fleet/snapshot_plan.py): keys, file checks,
eviction, percentiles."""

from __future__ import annotations

import random

from podium.fleet.snapshot_plan import (
    FileStamp,
    SnapshotInfo,
    identity_env,
    mapped_files,
    percentile,
    snapshot_key,
    stale_files,
    to_evict,
    uses_cuda,
)

HOST = {"kernel": "6.1.0 #1", "machine": "x86_64", "cpu": "avx2 sse4_2", "criu": "4.1.1"}
ENV = {"RUNPOD_POD_ID": "w1", "PODIUM_LOG_MARKER": "m1", "HOME": "/d/w1", "A": "1"}


def test_the_key_ignores_only_the_workers_identity() -> None:
    base = snapshot_key("ep", ["python", "-m", "h"], ENV, HOST)
    other_worker = {**ENV, "RUNPOD_POD_ID": "w2", "PODIUM_LOG_MARKER": "m2", "HOME": "/d/w2"}
    assert snapshot_key("ep", ["python", "-m", "h"], other_worker, HOST) == base
    with_fd = {**ENV, "PODIUM_SNAPSHOT_FD": "3"}
    assert snapshot_key("ep", ["python", "-m", "h"], with_fd, HOST) == base
    changed = [
        snapshot_key("ep2", ["python", "-m", "h"], ENV, HOST),
        snapshot_key("ep", ["python", "-m", "g"], ENV, HOST),
        snapshot_key("ep", ["python", "-m", "h"], {**ENV, "A": "2"}, HOST),
        snapshot_key("ep", ["python", "-m", "h"], {**ENV, "B": ""}, HOST),
        snapshot_key("ep", ["python", "-m", "h"], {**ENV, "CUDA_VISIBLE_DEVICES": "1"}, HOST),
        snapshot_key("ep", ["python", "-m", "h"], ENV, {**HOST, "kernel": "6.2.0 #1"}),
        snapshot_key("ep", ["python", "-m", "h"], ENV, {**HOST, "cpu": "avx2"}),
        snapshot_key("ep", ["python", "-m", "h"], ENV, {**HOST, "criu": "4.2"}),
        # argv boundaries matter: ["a b"] is not ["a", "b"]
        snapshot_key("ep", ["python -m", "h"], ENV, HOST),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    assert len(base) == 24 and int(base, 16) >= 0


def test_identity_is_the_per_worker_variables() -> None:
    mine = {"RUNPOD_POD_ID": "w1", "PODIUM_LOG_MARKER": "m1", "HOME": "/d/w1"}
    assert identity_env(ENV) == mine
    assert identity_env({"A": "1"}) == dict.fromkeys(mine)


def test_mapped_files_from_proc_maps() -> None:
    maps = "\n".join(
        [
            "55d0-55d1 r--p 00000000 08:01 123  /usr/bin/python3.11",
            "55d1-55d2 r-xp 00001000 08:01 123  /usr/bin/python3.11",
            "7f00-7f01 rw-p 00000000 00:00 0 ",
            "7f01-7f02 r--p 00000000 08:01 77   /w/weights.bin",
            "7f02-7f03 rw-s 00000000 00:05 9    /dev/zero (deleted)",
            "7f03-7f04 r--p 00000000 08:01 78   /tmp/gone file (deleted)",
            "7ffd-7ffe rw-p 00000000 00:00 0    [stack]",
            "7ffe-7fff r-xp 00000000 00:00 0    [vdso]",
            "7fff-8000 r--p 00000000 08:01 79   /lib/with space.so",
        ]
    )
    assert mapped_files(maps) == ["/lib/with space.so", "/usr/bin/python3.11", "/w/weights.bin"]


def test_stale_files() -> None:
    a, b = FileStamp("/a", 10, 1), FileStamp("/b", 20, 2)
    assert stale_files([a, b], {"/a": a, "/b": b}) == []
    assert stale_files([a, b], {"/a": a, "/b": None}) == ["/b"]
    assert stale_files([a, b], {"/a": FileStamp("/a", 11, 1), "/b": b}) == ["/a"]
    assert stale_files([a, b], {"/a": FileStamp("/a", 10, 5), "/b": b}) == ["/a"]
    many = [FileStamp(f"/{i}", 1, 1) for i in range(10)]
    assert stale_files(many, {}, limit=3) == ["/0", "/1", "/2"]


def test_eviction_is_least_recently_used_first() -> None:
    held = [
        SnapshotInfo("k1", "e1", 40, created_at=0.0, used_at=3.0),
        SnapshotInfo("k2", "e2", 40, created_at=0.0, used_at=1.0),
        SnapshotInfo("k3", "e3", 40, created_at=0.0, used_at=2.0),
    ]
    assert to_evict(held, 10, limit=200) == []
    assert to_evict(held, 30, limit=150) == []
    assert to_evict(held, 31, limit=150) == ["k2"]
    assert to_evict(held, 60, limit=120) == ["k2", "k3"]
    assert to_evict(held, 500, limit=120) == ["k2", "k3", "k1"]  # never fits: all go
    assert to_evict([], 500, limit=120) == []


def test_percentile_against_a_sorted_list() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 90) == 3.0
    rng = random.Random(7)
    for n in (1, 2, 5, 10, 101):
        values = [rng.random() for _ in range(n)]
        ordered = sorted(values)
        for q in (1, 50, 70, 90, 98, 100):
            got = percentile(values, q)
            assert got in values
            below = sum(1 for v in ordered if v <= got)
            assert below >= q / 100 * n  # at least q% are at or below it
            assert below - 1 < q / 100 * n  # and it is the smallest such value


def test_a_worker_uses_cuda_when_an_nvidia_device_is_mapped() -> None:
    plain = "55d0-55d1 r--p 00000000 08:01 123  /usr/bin/python3.11\n7f00-7f01 rw-p 0 00:00 0 "
    assert uses_cuda(plain) is False
    assert uses_cuda(plain + "\n7f10-7f11 rw-s 00000000 00:05 61  /dev/nvidiactl") is True
    assert uses_cuda(plain + "\n7f10-7f11 rw-s 00000000 00:05 62  /dev/nvidia0") is True
    assert uses_cuda("7f10-7f11 r--p 00000000 08:01 9  /opt/lib/nvidia/libcuda.so") is False
