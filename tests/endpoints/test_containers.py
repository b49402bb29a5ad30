"""Image references and the engine's command lines (endpoints/containers.py). Pure: the
argv of both engines is checked here (Docker's live use is untested: docs/deployment.md)."""

from __future__ import annotations

import pytest

from podium.endpoints.containers import (
    ContainerSpec,
    image_error,
    kill_argv,
    list_argv,
    pull_argv,
    remove_argv,
    run_argv,
)


@pytest.mark.parametrize(
    "ref",
    [
        "ubuntu",
        "runpod/worker-comfyui:5.1.0-base",
        "docker.io/runpod/worker-v1-vllm:v2.4.0stable-cuda12.1.0",
        "ghcr.io/org/image@sha256:" + "a" * 64,
        "localhost:5000/my_image__x:latest",
        "[::1]:5000/repo/name:tag",
        "registry.example.com/a-b/c.d_e:1.0",
    ],
)
def test_references_of_the_oci_grammar_are_images(ref):
    assert image_error(ref) is None


@pytest.mark.parametrize(
    "ref",
    ["", "UPPER/case", "a b", "repo:", "repo:-tag", "-repo", "repo//x", "a" * 300, "x;rm -rf /",
     "repo@sha256:short", "$(id)", "repo:tag\n", "\x00"],
)  # fmt: skip
def test_anything_else_is_named_and_refused(ref):
    problem = image_error(ref)
    assert problem is not None and ("not an image reference" in problem or "longer" in problem)


SPEC = ContainerSpec("runpod/worker:1", ("python", "handler.py", "--x"))


def test_podman_run_reads_variables_from_a_file_and_mounts_only_the_volume():
    argv = run_argv(
        "/usr/bin/podman",
        "podman",
        SPEC,
        name="podium-w1-abc",
        env_file="/home/w1/podium-w1-abc.env",
        gpus=[0, 2],
        volume_dir="/data/volumes/vol_abcdefghij",
        labels={"io.podium.owner": "o1", "io.podium.endpoint": "ep"},
    )
    assert argv[:3] == ["/usr/bin/podman", "run", "--rm"]
    assert "--init" in argv and argv[argv.index("--security-opt") + 1] == "no-new-privileges"
    assert "--privileged" not in argv
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--pull") + 1] == "never"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--device"] == [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=2",
    ]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"] == [
        "/data/volumes/vol_abcdefghij:/runpod-volume"
    ]
    assert argv[argv.index("--env-file") + 1] == "/home/w1/podium-w1-abc.env"
    assert "--env" not in argv and "-e" not in argv  # no variable on a command line
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--label"] == [
        "io.podium.endpoint=ep",
        "io.podium.owner=o1",
    ]
    assert argv[-4:] == ["runpod/worker:1", "python", "handler.py", "--x"]


def test_docker_gets_its_gpu_flag_and_no_command_means_the_images_own():
    argv = run_argv("docker", "docker", ContainerSpec("img:1"), name="n", gpus=[1, 3])
    assert argv[argv.index("--gpus") + 1] == "device=1,3" and "--device" not in argv
    assert argv[-1] == "img:1"
    assert "--volume" not in run_argv("docker", "docker", ContainerSpec("i"), name="n")


def test_pulls_with_credentials_name_a_file_never_the_password():
    assert pull_argv("podman", "podman", "r.io/a/b:1", None) == ["podman", "pull", "r.io/a/b:1"]
    assert pull_argv("podman", "podman", "r.io/a/b:1", "/tmp/x/auth.json") == [
        "podman", "pull", "--authfile", "/tmp/x/auth.json", "r.io/a/b:1"
    ]  # fmt: skip
    assert pull_argv("docker", "docker", "r.io/a/b:1", "/tmp/x") == [
        "docker", "--config", "/tmp/x", "pull", "r.io/a/b:1"
    ]  # fmt: skip


def test_kill_remove_and_list_by_owner():
    assert kill_argv("podman", "n1", "TERM") == ["podman", "kill", "--signal", "TERM", "n1"]
    assert remove_argv("docker", ["a", "b"]) == ["docker", "rm", "--force", "a", "b"]
    argv = list_argv("podman", "owner1")
    assert "label=io.podium.owner=owner1" in argv and argv[-1] == "{{.Names}}"
