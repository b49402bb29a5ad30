"""The worker's half of the snapshot handshake (worker/snapshot.py), in real processes:
it pauses only where it can be checkpointed, takes the identity it is given, and draws
fresh random numbers after it. (Checkpoint and restore themselves: tests/e2e/
test_snapshots.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from podium.worker.snapshot import SNAPSHOT_FD_ENV, snapshot_point

PROGRAM = r"""
import json, os, random, sys
random.seed(1234)  # state built before the point: every copy would share it
from podium.worker.snapshot import snapshot_point
resumed = snapshot_point()
print(json.dumps({
    "resumed": None if resumed is None else {"restored": resumed.restored, "env": resumed.env},
    "pod": os.environ.get("RUNPOD_POD_ID"),
    "home": os.environ.get("HOME"),
    "fd": os.environ.get("PODIUM_SNAPSHOT_FD"),
    "draw": random.random(),
    "stdin_is_null": os.path.samefile("/proc/self/fd/0", os.devnull),
}))
"""


def _run(prefix: list[str], answer: bytes | None) -> tuple[dict, dict | None]:
    """Run PROGRAM with the control pipe on fd 3; answer its pause with `answer`."""
    ctl_r, ctl_w = os.pipe()
    env = {**os.environ, SNAPSHOT_FD_ENV: "3", "RUNPOD_POD_ID": "original", "HOME": "/h/orig"}

    def child() -> None:
        os.dup2(ctl_w, 3)

    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", PROGRAM],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=(3,),
        preexec_fn=child,
        start_new_session=True,
    )
    os.close(ctl_w)
    with os.fdopen(ctl_r, "rb") as control:
        hello = control.readline()
        line = control.readline()
    assert json.loads(hello) == {"hello": "podium"}  # before anything else
    said = json.loads(line) if line else None
    assert proc.stdin is not None
    if answer is not None:
        proc.stdin.write(answer)
    proc.stdin.close()
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read()
    assert proc.wait(60) == 0
    return json.loads(out), said


def test_without_the_variable_nothing_happens() -> None:
    assert snapshot_point({}) is None


def test_a_bad_descriptor_is_ignored() -> None:
    env = {SNAPSHOT_FD_ENV: "987"}
    assert snapshot_point(env) is None
    assert SNAPSHOT_FD_ENV not in env  # never handed on to the handler's children


def test_a_process_that_cannot_be_checkpointed_says_why_and_runs_on() -> None:
    out, said = _run([], None)  # not its PID namespace's first process
    assert said is not None and said["pause"] is False
    assert "PID namespace" in said["why"]
    assert out["resumed"] is None and out["pod"] == "original" and out["fd"] is None


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a PID namespace of its own needs root and unshare (util-linux)",
)
NS = ["unshare", "--pid", "--fork", "--kill-child", "setsid"]


@needs_root
def test_it_pauses_and_takes_the_identity_it_is_given() -> None:
    answer = {"restored": True, "env": {"RUNPOD_POD_ID": "copy-7", "HOME": None}}
    out, said = _run(NS, (json.dumps(answer) + "\n").encode())
    assert said is not None and said["pause"] is True
    assert isinstance(said["pid"], int) and said["pid"] > 1  # its pid on the host
    assert any(f.endswith("podium/worker/snapshot.py") for f in said["files"])
    assert out["resumed"] == {"restored": True, "env": answer["env"]}
    assert out["pod"] == "copy-7" and out["home"] is None
    assert out["stdin_is_null"] is True  # the pipe it was told on is closed


@needs_root
def test_random_state_is_fresh_after_the_point() -> None:
    import random

    seeded = random.Random(1234).random()
    draws = {_run(NS, b'{"restored": false}\n')[0]["draw"] for _ in range(2)}
    assert seeded not in draws and len(draws) == 2


@needs_root
@pytest.mark.parametrize("answer", [b"", b"not json\n", b"[1, 2]\n", b'{"env": [1]}\n'])
def test_a_missing_or_odd_answer_leaves_the_worker_as_it_was(answer: bytes) -> None:
    out, said = _run(NS, answer)
    assert said is not None and said["pause"] is True
    assert out["resumed"] == {"restored": False, "env": {}}
    assert out["pod"] == "original" and out["home"] == "/h/orig"
