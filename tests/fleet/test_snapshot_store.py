"""The snapshot images on disk (fleet/snapshots.SnapshotStore): a dump becomes an image
only whole, one image per endpoint, bounded per endpoint and per host, stale ones
deleted, leftovers of killed dumps swept. Real directories; no CRIU needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.fleet.snapshots import SnapshotStore

MB = 1 << 20


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has it (until reused, which a test run does not reach)


def _dump(store: SnapshotStore, key: str, size: int) -> Path:
    tmp = store.begin(key)
    (tmp / "img" / "pages-1.img").write_bytes(b"\0" * size)
    return tmp


def _meta(endpoint: str, files: list[list[object]] | None = None, at: float = 1.0) -> dict:
    return {"endpointId": endpoint, "createdAt": at, "dumpSeconds": 0.5, "files": files or []}


def test_a_dump_is_an_image_only_once_committed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", host_limit=100 * MB, endpoint_limit=50 * MB)
    assert oct(os.stat(tmp_path / "s").st_mode & 0o777) == "0o700"
    tmp = _dump(store, "a" * 24, MB)
    assert store.list() == [] and store.lookup("a" * 24) is None  # half way: nothing
    info = store.commit(tmp, "a" * 24, _meta("ep1"))
    assert info is not None and info.endpoint_id == "ep1" and info.size >= MB
    assert not tmp.exists()
    assert store.lookup("a" * 24) is not None
    assert [i.key for i in store.list()] == ["a" * 24]


def test_sweep_removes_what_killed_dumps_left(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    dead = root / f".tmp-{_dead_pid()}-{'b' * 24}-abcdef"
    (dead / "img").mkdir(parents=True)
    (dead / "img" / "pages-1.img").write_bytes(b"x")
    alive = root / f".tmp-{os.getppid()}-{'c' * 24}-abcdef"  # a live gateway's dump
    (alive / "img").mkdir(parents=True)
    restore = root / f".restore-{_dead_pid()}-abcd1234"
    restore.mkdir()
    deleting = root / f".del-{'e' * 24}-abcdef"
    deleting.mkdir()
    no_record = root / ("d" * 24)
    (no_record / "img").mkdir(parents=True)  # renamed, but its record unreadable
    store = SnapshotStore(root, host_limit=100 * MB, endpoint_limit=50 * MB)
    assert not any(p.exists() for p in (dead, restore, deleting, no_record))
    assert alive.exists()
    assert store.list() == []


def test_one_image_per_endpoint(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", host_limit=100 * MB, endpoint_limit=50 * MB)
    store.commit(_dump(store, "a" * 24, MB), "a" * 24, _meta("ep1"))
    store.commit(_dump(store, "b" * 24, MB), "b" * 24, _meta("ep2"))
    store.commit(_dump(store, "c" * 24, MB), "c" * 24, _meta("ep1", at=2.0))  # new version
    assert sorted((i.endpoint_id, i.key) for i in store.list()) == [
        ("ep1", "c" * 24),
        ("ep2", "b" * 24),
    ]


def test_bounds_per_endpoint_and_per_host(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", host_limit=10 * MB, endpoint_limit=5 * MB)
    assert store.commit(_dump(store, "a" * 24, 6 * MB), "a" * 24, _meta("big")) is None
    assert store.list() == [] and [p.name for p in (tmp_path / "s").iterdir()] == []
    for i, key in enumerate(("1" * 24, "2" * 24, "3" * 24)):
        store.commit(_dump(store, key, 3 * MB), key, _meta(f"ep{i}", at=float(i)))
    store.used("1" * 24)  # restored lately: kept over the older-used 2
    store.commit(_dump(store, "4" * 24, 3 * MB), "4" * 24, _meta("ep3", at=9.0))
    keys = sorted(i.key for i in store.list())
    assert keys == ["1" * 24, "3" * 24, "4" * 24]
    assert sum(i.size for i in store.list()) <= 10 * MB
    assert next(i for i in store.list() if i.key == "1" * 24).restores == 1


def test_a_changed_file_makes_the_image_stale(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 100)
    st = weights.stat()
    store = SnapshotStore(tmp_path / "s", host_limit=100 * MB, endpoint_limit=50 * MB)
    files: list[list[object]] = [[str(weights), st.st_size, st.st_mtime_ns]]
    store.commit(_dump(store, "a" * 24, MB), "a" * 24, _meta("ep1", files))
    assert store.lookup("a" * 24) is not None
    weights.write_bytes(b"v" * 101)
    assert store.lookup("a" * 24) is None
    assert store.list() == []  # deleted, not only skipped


def test_delete(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", host_limit=100 * MB, endpoint_limit=50 * MB)
    store.commit(_dump(store, "a" * 24, MB), "a" * 24, _meta("ep1"))
    assert store.delete("a" * 24) is True
    assert store.delete("a" * 24) is False
    assert store.list() == []


@pytest.mark.parametrize("junk", ["{", "[]", '{"endpointId": 3}'])
def test_an_unreadable_record_is_no_image(tmp_path: Path, junk: str) -> None:
    store = SnapshotStore(tmp_path / "s", host_limit=100 * MB, endpoint_limit=50 * MB)
    store.commit(_dump(store, "a" * 24, MB), "a" * 24, _meta("ep1"))
    (tmp_path / "s" / ("a" * 24) / "meta.json").write_text(junk)
    if junk == '{"endpointId": 3}':  # a record, oddly typed: shown as it reads
        assert [i.endpoint_id for i in store.list()] == ["3"]
    else:
        assert store.list() == [] and store.lookup("a" * 24) is None
