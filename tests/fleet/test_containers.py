"""fleet/containers.py with a fake engine CLI (a script that answers as Podman would and
records its calls): one pull per image, pull failures named, the env file and the auth file
(0600, gone after use), no secret on a command line, leftovers removed. The real engine:
tests/e2e/test_containers.py."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest

from podium.endpoints.containers import ContainerSpec
from podium.fleet.containers import (
    EXIT_NOT_STARTED,
    ContainerRun,
    ImagePulls,
    find_engine,
    remove_owned,
    spawn_container,
)

FAKE = r"""#!PYTHON
import json, os, sys, time
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
def record(entry):
    with open(os.path.join(state, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps(entry) + "\n")
images = os.path.join(state, "images")
have = set(open(images).read().split()) if os.path.exists(images) else set()
if args == ["--version"]:
    print("podman version 9.9.9"); sys.exit(0)
record({"argv": args})
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] in have else 1)
if args[0] == "pull":
    image = args[-1]
    if "--authfile" in args:
        record({"auth": open(args[args.index("--authfile") + 1]).read()})
    print(f"Trying to pull {image}...", flush=True)
    time.sleep(float(os.environ.get("FAKE_PULL_S", "0")))
    if image.startswith("bad/"):
        print(f"Error: initializing source docker://{image}: manifest unknown"); sys.exit(125)
    with open(images, "a") as fh:
        fh.write(image + "\n")
    print("Writing manifest to image destination"); sys.exit(0)
if args[0] == "run":
    env_file = args[args.index("--env-file") + 1]
    record({"env_file": env_file, "env": open(env_file).read()})
    print("worker up", flush=True)
    sys.exit(int(os.environ.get("FAKE_RUN_EXIT", "0")))
if args[0] == "ps":
    names = os.path.join(state, "left")
    print(open(names).read() if os.path.exists(names) else ""); sys.exit(0)
sys.exit(0)
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    engine = bin_dir / "podman"
    engine.write_text(FAKE.replace("PYTHON", sys.executable))
    engine.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state)}


def _calls(env: dict[str, str]) -> list[dict]:
    path = Path(env["FAKE_STATE"]) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run(image: str, creds: tuple[str, str] | None = None, name: str = "c1") -> ContainerRun:
    return ContainerRun(
        ContainerSpec(image, ("python", "h.py")),
        name=name,
        owner="own1",
        endpoint_id="ep1",
        worker_id="w1",
        slot=0,
        creds=creds,
    )


def _finish(proc, timeout: float = 20.0) -> tuple[int, str]:
    """Its exit code and all it wrote (as a LogShipper reads it: to the end, then closed)."""
    deadline = time.monotonic() + timeout
    while (code := proc.poll()) is None:
        assert time.monotonic() < deadline, "the fake container did not end"
        time.sleep(0.02)  # the supervisor polls every tick; here, a quick loop
    assert proc.stdout is not None
    with proc.stdout as out:
        return code, out.read().decode()


def test_the_engine_is_found_with_its_version(fake):
    engine = find_engine(None, fake)
    assert engine is not None and engine.kind == "podman" and engine.describe() == "podman 9.9.9"
    assert find_engine("docker", {"PATH": "/nonexistent"}) is None


def test_one_pull_per_image_then_each_worker_runs(fake, tmp_path):
    engine = find_engine(None, fake)
    assert engine is not None
    pulls = ImagePulls(engine, fake)
    env = {"RUNPOD_AI_API_KEY": "pw_secret_token", "HF_TOKEN": "hf_secret"}
    first = spawn_container(engine, _run("a/img:1", name="c1"), env, fake, (), pulls, tmp_path)
    second = spawn_container(engine, _run("a/img:1", name="c2"), env, fake, (), pulls, tmp_path)
    assert first.note == "pulling image a/img:1"
    (code_a, out), (code_b, _) = _finish(first), _finish(second)
    assert code_a == 0 and code_b == 0
    calls = _calls(fake)
    assert sum(1 for c in calls if c.get("argv", [None])[0] == "pull") == 1
    runs = [c for c in calls if c.get("argv", [None])[0] == "run"]
    assert len(runs) == 2
    for run in runs:
        assert "pw_secret_token" not in " ".join(run["argv"])  # never on a command line
    envs = [c for c in calls if "env_file" in c]
    assert all("RUNPOD_AI_API_KEY=pw_secret_token" in e["env"] for e in envs)
    assert not any(Path(e["env_file"]).exists() for e in envs)  # removed once it ended
    assert "Trying to pull a/img:1" in out and "worker up" in out


def test_a_failed_pull_ends_the_worker_with_the_engines_words(fake, tmp_path):
    engine = find_engine(None, fake)
    assert engine is not None
    proc = spawn_container(
        engine, _run("bad/image:1"), {}, fake, (), ImagePulls(engine, fake), tmp_path
    )
    code, out = _finish(proc)
    assert code == EXIT_NOT_STARTED
    assert "--- podium: cannot pull image bad/image:1: Error: initializing source" in out
    assert not any(c.get("argv", [None])[0] == "run" for c in _calls(fake))


def test_registry_credentials_go_in_a_file_for_the_pull_only(fake, tmp_path):
    engine = find_engine(None, fake)
    assert engine is not None
    run = _run("registry.example.com/team/img:2", creds=("me", "pa55word"))
    proc = spawn_container(engine, run, {}, fake, (), ImagePulls(engine, fake), tmp_path)
    assert _finish(proc)[0] == 0
    calls = _calls(fake)
    [pull] = [c for c in calls if c.get("argv", [None])[0] == "pull"]
    assert "pa55word" not in " ".join(pull["argv"])
    auth = json.loads(next(c["auth"] for c in calls if "auth" in c))
    token = auth["auths"]["registry.example.com"]["auth"]
    assert base64.b64decode(token).decode() == "me:pa55word"
    assert not Path(pull["argv"][pull["argv"].index("--authfile") + 1]).exists()


def test_a_worker_stopped_while_its_image_is_pulled_never_runs(fake, tmp_path):
    engine = find_engine(None, fake)
    assert engine is not None
    slow = {**fake, "FAKE_PULL_S": "2"}
    proc = spawn_container(
        engine, _run("a/slow:1"), {}, slow, (), ImagePulls(engine, slow), tmp_path
    )
    assert proc.poll() is None
    proc.terminate()
    code, out = _finish(proc)
    assert code == 0 and "stopped before its image was pulled" in out


def test_leftovers_of_an_installation_are_removed(fake):
    engine = find_engine(None, fake)
    assert engine is not None
    (Path(fake["FAKE_STATE"]) / "left").write_text("podium-w1-aaa\npodium-w2-bbb\n")
    assert remove_owned(engine, "own1", fake) == ["podium-w1-aaa", "podium-w2-bbb"]
    calls = [c["argv"] for c in _calls(fake)]
    assert [
        "ps",
        "--all",
        "--filter",
        "label=io.podium.owner=own1",
        "--format",
        "{{.Names}}",
    ] in calls
    assert ["rm", "--force", "podium-w1-aaa", "podium-w2-bbb"] in calls


def test_gpus_are_passed_by_host_index_and_renumbered_inside(fake, tmp_path):
    engine = find_engine(None, fake)
    assert engine is not None
    (Path(fake["FAKE_STATE"]) / "images").write_text("a/img:1\n")  # already here: no pull
    env = {"CUDA_VISIBLE_DEVICES": "1,3"}  # what a process worker on GPUs 1 and 3 gets
    proc = spawn_container(
        engine, _run("a/img:1"), env, fake, (1, 3), ImagePulls(engine, fake), tmp_path
    )
    assert _finish(proc)[0] == 0
    calls = _calls(fake)
    assert not any(c.get("argv", [None])[0] == "pull" for c in calls)
    [run] = [c["argv"] for c in calls if c.get("argv", [None])[0] == "run"]
    assert [run[i + 1] for i, a in enumerate(run) if a == "--device"] == [
        "nvidia.com/gpu=1",
        "nvidia.com/gpu=3",
    ]
    [inside] = [c["env"] for c in calls if "env_file" in c]
    assert "CUDA_VISIBLE_DEVICES=0,1\n" in inside
