"""The official `openai` Python client against a real gateway (SQLite and Redis) whose
workers follow worker-vllm's contract (tests/openai_routes/fake_vllm.py): Podium's runtime with
worker-vllm's two stream shapes, and an unmodified runpod SDK worker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import REDIS_URL, _redis_available, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, wait_until, worker_env
from tests.runpod_compat.harness import RUNPOD_PY, kill_group, tail

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HANDLER = Path(__file__).resolve().parent / "fake_vllm.py"
PROMPT = "the quick brown fox"
ANSWER = "fox brown quick the"  # the fake model reverses the words


@dataclass
class Served:
    gw: Gateway
    endpoints: dict[str, str]  # worker kind -> endpoint id
    logs: dict[str, Path]
    read_key: str

    def client(self, kind: str, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.gw.url}/v2/{self.endpoints[kind]}/openai/v1",
            api_key=key or self.gw.admin_key,
            max_retries=0,
            timeout=30,
        )

    def log(self, kind: str) -> str:
        return tail(self.logs.get(kind))


# kind -> (program, env): Podium's runtime with worker-vllm's stream shapes of today (raw
# SSE text) and of RAW_OPENAI_OUTPUT=0 (objects); the runpod SDK with RAW_OPENAI_OUTPUT=1.
WORKERS: dict[str, tuple[str, dict[str, str]]] = {
    "podium-raw": ("podium", {"FAKE_VLLM_STREAM": "raw"}),
    "podium-objects": ("podium", {"FAKE_VLLM_STREAM": "objects"}),
    "runpod-sse": ("runpod", {"FAKE_VLLM_STREAM": "sse"}),
    "slow": ("podium", {"FAKE_VLLM_STREAM": "raw", "FAKE_VLLM_TOKEN_S": "0.2"}),
}


def _start(gw: Gateway, kind: str, endpoint: dict[str, Any], root: Path) -> subprocess.Popen:
    program, extra = WORKERS[kind]
    env = worker_env(gw, endpoint, f"{kind}-{uuid.uuid4().hex[:6]}", root / kind / "home")
    env.update(extra)
    if program == "podium":
        cmd = [sys.executable, "-m", "podium.worker", "tests.openai_routes.fake_vllm:handler"]
        env.update({"PODIUM_WORKER_AGGREGATE_STREAM": "true", "PODIUM_WORKER_CONCURRENCY": "4"})
        env.update({"PODIUM_WORKER_TAKE_HOLD_S": "1"})
    else:
        if not RUNPOD_PY.exists():
            pytest.skip(f"the runpod SDK venv is missing ({RUNPOD_PY})")
        cmd = [str(RUNPOD_PY), str(HANDLER)]
    log = root / f"{kind}.log"
    with log.open("ab") as log_out:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=log_out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    store = None
    if request.param == "redis":
        if not _redis_available():
            pytest.fail(f"Redis is not answering at {REDIS_URL}")
        store = f"{REDIS_URL}?prefix=oa{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("openai")
    gw = Gateway(data_dir=root / "gw", port=free_port(), store=store)
    gw.data_dir.mkdir()
    gw.start()
    procs: list[subprocess.Popen] = []
    try:
        endpoints, logs = {}, {}
        for kind in WORKERS:
            ep = gw.create_endpoint(name=kind)
            endpoints[kind] = ep["id"]
            logs[kind] = root / f"{kind}.log"
            procs.append(_start(gw, kind, ep, root))
        with gw.client() as c:
            read_key = c.post("/v1/keys", json={"scopes": ["read"]}).json()["key"]
            for kind, ep_id in endpoints.items():
                wait_until(
                    lambda ep_id=ep_id: c.get(f"/v2/{ep_id}/health").json()["workers"]["ready"],
                    timeout=60,
                    interval=0.2,
                    what=f"{kind} worker ready ({tail(logs[kind])})",
                )
        yield Served(gw, endpoints, logs, read_key)
    finally:
        for proc in procs:
            kill_group(proc)
        gw.stop()
        if store is not None:
            drop_redis_prefix(store)


KINDS = ["podium-raw", "podium-objects", "runpod-sse"]


@pytest.mark.parametrize("kind", KINDS)
def test_chat_completion(served: Served, kind: str):
    reply = served.client(kind).chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.choices[0].message.content == ANSWER, served.log(kind)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == 4


@pytest.mark.parametrize("kind", KINDS)
def test_chat_completion_stream(served: Served, kind: str):
    stream = served.client(kind).chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == ANSWER, served.log(kind)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(chunks) == 5  # one per token, then the end


@pytest.mark.parametrize("kind", KINDS)
def test_completions_sync_and_stream(served: Served, kind: str):
    client = served.client(kind)
    reply = client.completions.create(model="fake-llm", prompt=PROMPT, max_tokens=2)
    assert (reply.choices[0].text, reply.choices[0].finish_reason) == ("fox brown", "length")
    pieces = [
        c.choices[0].text
        for c in client.completions.create(model="fake-llm", prompt=PROMPT, stream=True)
    ]
    assert "".join(pieces) == ANSWER


def test_models_and_errors(served: Served):
    client = served.client("podium-raw")
    assert [m.id for m in client.models.list()] == ["fake-llm"]
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        list(
            client.chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    with pytest.raises(openai.AuthenticationError):
        served.client("podium-raw", key="pk_not_a_key").models.list()
    with pytest.raises(openai.PermissionDeniedError):
        served.client("podium-raw", key=served.read_key).models.list()
    with pytest.raises(openai.BadRequestError, match="stream"):
        client.post("/chat/completions", body={"stream": "yes"}, cast_to=object)


def test_a_client_that_leaves_mid_stream_cancels_the_job(served: Served):
    client = served.client("slow")
    stream = client.chat.completions.create(
        model="fake-llm",
        messages=[{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}],
        max_tokens=60,
        stream=True,
    )
    first = next(iter(stream))
    assert first.choices[0].delta.content == "w59"
    stream.close()
    ep = served.endpoints["slow"]
    with served.gw.client() as c:

        def cancelled() -> bool:
            entries = c.get(f"/v2/{ep}/requests").json()["requests"]
            return bool(entries) and entries[0]["status"] == "CANCELLED"

        # /requests allows 10 calls per 10 s: poll about once a second
        wait_until(cancelled, timeout=20, interval=1.2, what="the abandoned job cancelled")
