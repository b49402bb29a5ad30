"""A worker that follows worker-vllm's contract with a tiny fake model (no GPU, no
weights): the job's input is {"openai_route", "openai_input"}; it yields the OpenAI
response once, or, with "stream": true, stream chunks the way worker-vllm does.

The model `fake-llm` answers with the words of the prompt in reverse order, one token per
word, up to `max_tokens` (default 16). FAKE_VLLM_STREAM picks how stream chunks look:

    raw      SSE text cut at arbitrary places, ending with `data: [DONE]` (worker-vllm
             today: it passes vLLM's SSE bytes on as they arrive)
    sse      batches of whole `data: {...}\\n\\n` events, no [DONE] (worker-vllm before
             it proxied vLLM, RAW_OPENAI_OUTPUT=1)
    objects  lists of chunk objects (RAW_OPENAI_OUTPUT=0)

FAKE_VLLM_TOKEN_S: a pause before each token (streams a client may leave mid-way).
Runs under Podium's runtime (`python -m podium.worker tests.openai_routes.fake_vllm:handler`
with PODIUM_WORKER_AGGREGATE_STREAM=true) or as an unmodified runpod SDK worker
(`python tests/openai_routes/fake_vllm.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

MODEL = "fake-llm"
STREAM = os.environ.get("FAKE_VLLM_STREAM", "raw")
TOKEN_S = float(os.environ.get("FAKE_VLLM_TOKEN_S", "0"))


def _error(status: int, message: str) -> dict[str, Any]:
    # worker-vllm's shape for an error vLLM answered: {"error": {message, type, code}}
    body = json.dumps({"object": "error", "message": message, "code": status})
    return {
        "error": {
            "message": f"vLLM returned HTTP {status}: {body}",
            "type": "worker_error",
            "code": None,
        }
    }


def _prompt(route: str, body: dict[str, Any]) -> str:
    if route == "/v1/chat/completions":
        return str(body["messages"][-1]["content"])
    prompt = body["prompt"]
    return " ".join(prompt) if isinstance(prompt, list) else str(prompt)


def generate(prompt: str, max_tokens: int) -> tuple[list[str], str]:
    """The fake model: the prompt's words reversed, one token each."""
    words = prompt.split()[::-1]
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words[:max_tokens])]
    return tokens, "length" if len(words) > max_tokens else "stop"


def _chunk(rid: str, route: str, piece: str | None, finish: str | None) -> dict[str, Any]:
    chat = route == "/v1/chat/completions"
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
    if chat:
        choice["delta"] = {} if piece is None else {"role": "assistant", "content": piece}
    else:
        choice["text"] = piece or ""
    return {
        "id": rid,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [choice],
    }


def _response(rid: str, route: str, tokens: list[str], finish: str, n_prompt: int) -> dict:
    text = "".join(tokens)
    chat = route == "/v1/chat/completions"
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return {
        "id": rid,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [choice],
        "usage": {
            "prompt_tokens": n_prompt,
            "completion_tokens": len(tokens),
            "total_tokens": n_prompt + len(tokens),
        },
    }


async def handler(job: dict[str, Any]) -> AsyncIterator[Any]:
    inp = job["input"]
    route = inp.get("openai_route")
    body = inp.get("openai_input") or {}
    if route == "/v1/models":
        yield {
            "object": "list",
            "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "podium-tests"}],
        }
        return
    if route not in ("/v1/chat/completions", "/v1/completions"):
        yield _error(404, f"Route {route} is not served here.")
        return
    if body.get("model", MODEL) != MODEL:
        yield _error(404, f"The model `{body['model']}` does not exist.")
        return
    prompt = _prompt(route, body)
    tokens, finish = generate(prompt, int(body.get("max_tokens") or 16))
    rid = ("chatcmpl-" if route == "/v1/chat/completions" else "cmpl-") + job["id"]
    if not body.get("stream"):
        yield _response(rid, route, tokens, finish, len(prompt.split()))
        return
    chunks = [_chunk(rid, route, t, None) for t in tokens] + [_chunk(rid, route, None, finish)]
    if STREAM == "objects":
        for i in range(0, len(chunks), 2):
            await asyncio.sleep(TOKEN_S)
            yield chunks[i : i + 2]
        return
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if STREAM == "sse":
        for i in range(0, len(events), 2):
            await asyncio.sleep(TOKEN_S)
            yield "".join(events[i : i + 2])
        return
    text = "".join(events) + "data: [DONE]\n\n"
    for i in range(0, len(text), 37):  # cut anywhere, even inside an event
        await asyncio.sleep(TOKEN_S)
        yield text[i : i + 37]


if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
