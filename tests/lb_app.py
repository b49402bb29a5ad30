"""A load-balancing worker as RunPod users write them: a FastAPI app with a `/ping` (204
while it "loads", then 200) on PORT (and PORT_HEALTH when that differs), run by the fleet
as a process command and inside an image (tests/e2e/test_lb.py, bench/lb_proxy.py).

Deterministic, no sleeps: it is "loaded" after LOAD_PINGS health checks; the SSE stream
and /hold wait on gates the test opens (`POST /open/{gate}`), so a test proves that the
first event arrives before the last one is even produced.
"""

from __future__ import annotations

import asyncio
import os
import sys

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse

WORKER = os.environ.get("RUNPOD_POD_ID", "local")
BIND = os.environ.get("BIND_HOST", "127.0.0.1")
LOAD_PINGS = int(os.environ.get("LOAD_PINGS", "2"))
_pings = 0
_gates: dict[str, asyncio.Event] = {}
_holding: set[str] = set()

app = FastAPI()


def _gate(name: str) -> asyncio.Event:
    return _gates.setdefault(name[:50], asyncio.Event())


@app.get(os.environ.get("HEALTH_CHECK_PATH", "/ping"))
async def ping() -> Response:
    global _pings
    _pings += 1
    return Response(status_code=200 if _pings > LOAD_PINGS else 204)


@app.post("/generate")
async def generate(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(
        {
            "worker": WORKER,
            "pid": os.getpid(),
            "echo": body,
            "authorization": request.headers.get("authorization"),
            "forwardedFor": request.headers.get("x-forwarded-for"),
            "path": request.url.path,
            "headers": dict(request.headers),
            "query": str(request.url.query),
        },
        headers={"X-App": "lb-app"},
    )


@app.post("/size")
async def size(request: Request) -> dict[str, object]:
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return {"bytes": n, "worker": WORKER}


@app.post("/open/{gate}")
async def open_gate(gate: str) -> dict[str, str]:
    _gate(gate).set()
    return {"opened": gate, "worker": WORKER}


@app.get("/hold/{gate}")
async def hold(gate: str) -> dict[str, object]:
    """Answers once the gate is opened (a request a worker holds: kill it meanwhile)."""
    _holding.add(gate)
    try:
        await _gate(gate).wait()
    finally:
        _holding.discard(gate)
    return {"worker": WORKER, "pid": os.getpid()}


@app.get("/holding")
async def holding() -> dict[str, object]:
    return {"gates": sorted(_holding), "worker": WORKER, "pid": os.getpid()}


@app.get("/stream/{gate}")
async def stream(gate: str) -> StreamingResponse:
    """SSE: the first event at once, the rest only once the gate is opened."""

    async def events():  # type: ignore[no-untyped-def]
        yield f"data: first {WORKER}\n\n"
        await _gate(gate).wait()
        for i in range(3):
            yield f"data: {i}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{WORKER}:{text}")
    except WebSocketDisconnect:
        return


async def main() -> None:
    port = int(os.environ.get("PORT", "80"))
    health = int(os.environ.get("PORT_HEALTH", str(port)))
    servers = [uvicorn.Server(uvicorn.Config(app, host=BIND, port=port, log_level="warning"))]
    if health != port:
        servers.append(
            uvicorn.Server(uvicorn.Config(app, host=BIND, port=health, log_level="warning"))
        )
    print(f"lb_app {WORKER} on port {port} (health {health})", file=sys.stderr, flush=True)
    await asyncio.gather(*(s.serve() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
