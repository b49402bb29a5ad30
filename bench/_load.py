"""Load-generation helpers for bench/control_plane.py (loopback only, always bounded).

- `run_wrk` drives `wrk` (one thread, N connections, fixed duration or a request count)
  and reads its exact percentiles back through a Lua `done()` hook.
- `run_python_load` is the fallback when wrk is missing: a raw HTTP/1.1 keep-alive
  client on asyncio streams, bounded by a request count and a deadline.
- `python bench/_load.py bare PORT` serves the bare ASGI ceiling app.
- `python bench/_load.py worker ...` is a minimal raw-HTTP worker: long-poll job-take,
  post `{"output": {}}` to job-done. No handler, no SDK: it measures the control plane.
  Given a RESULT path (`-`: none), it writes `{"worker", "base", "jobs"}` there on exit:
  which gateway (BASE) gave it how many jobs. Given CHUNKS, it first posts that many
  stream chunks per job to job-stream and then job-done with isStream=true, as a
  generator handler's worker does.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Background",
    "LoadResult",
    "percentile",
    "run_load",
    "run_python_load",
    "run_wrk",
    "wrk_version",
]

LOOPBACK = "127.0.0.1"


@dataclass(slots=True)
class LoadResult:
    generator: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers plus socket errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an unsorted list; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _check_loopback(url: str) -> None:
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"load targets must be http://{LOOPBACK}:PORT, got {url}")


# --- wrk ---------------------------------------------------------------------------


def wrk_version() -> str | None:
    """`wrk x.y.z` when wrk is on PATH, else None."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout + out.stderr).strip().splitlines()
    if not first or not first[0].startswith("wrk"):
        return None
    return " ".join(first[0].split()[:2])


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


_WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d," ..
    "\"status_errors\":%d,\"socket_errors\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""

_WRK_STOP_AFTER = """
local answered = 0
response = function(status, headers, body)
  answered = answered + 1
  if answered >= {n} then wrk.thread:stop() end
end
"""


def _wrk_start(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    seconds: float = 5.0,
    connections: int = 32,
    stop_after: int | None = None,
) -> tuple[subprocess.Popen[str], str]:
    _check_loopback(url)
    lua = [f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        lua.append(f"wrk.body = {_lua_string(body)}")
    for name, value in (headers or {}).items():
        lua.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    lua.append(_WRK_DONE)
    if stop_after is not None:
        lua.append(_WRK_STOP_AFTER.replace("{n}", str(int(stop_after))))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write("\n".join(lua))
        script = fh.name
    duration = max(1, math.ceil(seconds))
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", script, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, script


def _wrk_finish(
    proc: subprocess.Popen[str], script: str, timeout: float, interrupt: bool = False
) -> LoadResult:
    """Wait for wrk (SIGINT first when `interrupt`: wrk then stops and reports)."""
    try:
        if interrupt and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    finally:
        os.unlink(script)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (rc {proc.returncode}): {out}{err}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return LoadResult(
        generator="wrk",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["status_errors"] + data["socket_errors"],
    )


def run_wrk(url: str, **kw: Any) -> LoadResult:
    """One wrk run: 1 thread, `connections` keep-alive connections, `seconds` long.
    (`stop_after` stops sending after that many answers, but wrk itself still runs
    until `seconds`: use `Background` to end it early.)"""
    proc, script = _wrk_start(url, **kw)
    return _wrk_finish(proc, script, timeout=max(1.0, kw.get("seconds", 5.0)) + 30)


# --- Python fallback ---------------------------------------------------------------
# A raw HTTP/1.1 keep-alive client on asyncio streams (uvloop when installed). Not httpx:
# httpx's AsyncClient collapses at 32 concurrent connections on this stack (measured on
# the bare route: 118 req/s at 32 connections, 687 at 8, wrk 6,600), which would
# measure the generator rather than the server.


async def _read_response(reader: asyncio.StreamReader) -> int:
    """One response off a keep-alive connection; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "content-length" in fields:
        await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


def run_python_load(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    seconds: float = 5.0,
    connections: int = 32,
    stop_after: int | None = None,
    max_requests: int = 200_000,
    stop_event: threading.Event | None = None,
) -> LoadResult:
    """`connections` keep-alive connections, each sending its next request when the
    previous answer is read; bounded by time, by count and by `stop_event`."""
    _check_loopback(url)
    budget = min(stop_after or max_requests, max_requests)
    hostport, _, path = url.removeprefix("http://").partition("/")
    host, _, port = hostport.partition(":")
    payload = (body or "").encode()
    head = [f"{method} /{path} HTTP/1.1", f"Host: {hostport}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(payload)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload

    async def main() -> LoadResult:
        latencies: list[float] = []
        errors = 0
        sent = 0
        start = time.perf_counter()
        deadline = start + seconds

        def more() -> bool:
            if stop_event is not None and stop_event.is_set():
                return False
            return sent < budget and time.perf_counter() < deadline

        async def loop() -> None:
            nonlocal errors, sent
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while more():
                    sent += 1
                    t0 = time.perf_counter()
                    writer.write(request)
                    try:
                        async with asyncio.timeout(10):
                            status = await _read_response(reader)
                    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
                        errors += 1
                        return
                    latencies.append(time.perf_counter() - t0)
                    errors += not 200 <= status < 300
            finally:
                writer.close()

        results = await asyncio.gather(
            *(loop() for _ in range(connections)), return_exceptions=True
        )
        errors += sum(isinstance(r, BaseException) for r in results)
        elapsed = time.perf_counter() - start
        return LoadResult(
            generator="python-asyncio",
            requests=len(latencies),
            seconds=elapsed,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            errors=errors,
        )

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def run_load(url: str, *, use_wrk: bool, **kw: Any) -> LoadResult:
    return run_wrk(url, **kw) if use_wrk else run_python_load(url, **kw)


class Background:
    """A load run in the background (`seconds` is its cap); `stop()` ends it early and
    returns its result."""

    def __init__(self, url: str, *, use_wrk: bool, **kw: Any) -> None:
        self._seconds = float(kw.get("seconds", 5.0))
        self._result: LoadResult | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        if use_wrk:
            self._proc, self._script = _wrk_start(url, **kw)
            self._thread = None
        else:
            self._proc = None

            def target() -> None:
                try:
                    self._result = run_python_load(url, stop_event=self._stop, **kw)
                except BaseException as exc:  # reported by stop()
                    self._error = exc

            self._thread = threading.Thread(target=target, daemon=True)
            self._thread.start()

    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> LoadResult:
        if self._proc is not None:
            return _wrk_finish(self._proc, self._script, timeout=30, interrupt=True)
        assert self._thread is not None
        self._stop.set()
        self._thread.join(self._seconds + 30)
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the Python load generator did not finish")
        return self._result


# --- child processes ---------------------------------------------------------------


def serve_bare(port: int) -> None:
    """The ceiling: one POST route returning a small JSON, same uvicorn call as the
    gateway (`podium serve`): default loop/http (uvloop/httptools), no access log."""
    import uvicorn
    from fastapi import FastAPI
    from starlette.responses import JSONResponse

    app = FastAPI()

    @app.post("/v2/{endpoint_id}/run")
    async def run(endpoint_id: str) -> JSONResponse:
        return JSONResponse({"id": "00000000-0000-0000-0000-000000000000", "status": "IN_QUEUE"})

    uvicorn.run(app, host=LOOPBACK, port=port, log_level="info", access_log=False)


def worker_loop(
    base: str, token: str, worker_id: str, hold: float, max_seconds: float, chunks: int = 0
) -> int:
    """Long-poll job-take, post an empty output to job-done (after `chunks` stream
    chunks); stop on SIGTERM or after `max_seconds`. Returns the number of jobs completed."""
    import httpx

    _check_loopback(base + "/")
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    deadline = time.monotonic() + max_seconds
    take = f"{base}/job-take/{worker_id}?hold={hold:g}"
    done_base = f"{base}/job-done/{worker_id}/"
    stream_base = f"{base}/job-stream/{worker_id}/"
    body = b'{"output": []}' if chunks else b'{"output": {}}'
    done_query = "?isStream=true" if chunks else ""
    n = 0
    with httpx.Client(headers={"Authorization": token}, timeout=hold + 10) as client:
        while not stopping and time.monotonic() < deadline:
            try:
                r = client.get(take)
                if r.status_code != 200:
                    continue
                job_id = r.json()["id"]
                for i in range(chunks):
                    client.post(stream_base + job_id, content=b'{"output": {"i": %d}}' % i)
                d = client.post(done_base + job_id + done_query, content=body)
                n += d.status_code == 200
            except httpx.HTTPError:
                time.sleep(0.05)
    return n


def main(argv: list[str]) -> int:
    if argv[:1] == ["bare"]:
        serve_bare(int(argv[1]))
        return 0
    if argv[:1] == ["worker"]:
        base, token, worker_id, hold, max_seconds = argv[1:6]
        chunks = int(argv[7]) if len(argv) > 7 else 0
        n = worker_loop(base, token, worker_id, float(hold), float(max_seconds), chunks)
        print(f"worker {worker_id}: {n} jobs", file=sys.stderr)
        if len(argv) > 6 and argv[6] != "-":
            summary = {"worker": worker_id, "base": base, "jobs": n}
            Path(argv[6]).write_text(json.dumps(summary))
        return 0
    print(
        f"usage: {Path(__file__).name} bare PORT | "
        "worker BASE TOKEN ID HOLD MAX_S [RESULT|-] [CHUNKS]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
