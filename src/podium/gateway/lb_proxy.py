"""Load-balancing endpoints at the gateway: requests proxied to workers' own HTTP servers.

    LbProxy       the requests of load-balancing endpoints, by path (/lb/ENDPOINT_ID/...)
                  or by Host (`ENDPOINT_ID.<gateway host>`, RunPod's URL shape; a Host
                  that names no such endpoint is the gateway's own), served in plain ASGI:
                  every method, bodies streamed both ways (≤ 30 MB, 413 beyond; a body
                  that stalls the idle limit is 408); no retry once a worker may have seen
                  the request (a worker that refuses the connection is skipped); 524 when
                  its answer does not begin within the processing limit; every answer
                  names its worker (X-Runpod-Worker-Id). The client to the workers is
                  aiohttp's (keep-alive pool): httpx's pool cost 4 ms a request here
                  (docs/benchmarks.md).
    LbRouter      which worker takes a request: the ready workers the fleet announced in
                  the store's worker registry, least requests in flight (this gateway's
                  exact, the others' from their `lbload` records), affinity; a request that
                  finds none waits (and counts as waiting, so the fleet starts one). It
                  publishes this gateway's load for the others and for the scaler.
    router        the WebSocket route /lb/{endpoint_id}/{path}: relayed both ways.

The contract's pure parts (health, headers, affinity, choice) are endpoints/loadbalancer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import anyio
import websockets
from fastapi import APIRouter, Request, WebSocket
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from podium.endpoints.loadbalancer import (
    ANNOUNCE_URL,
    BODY_IDLE_S,
    LB_PATH_PREFIX,
    MAX_BODY_BYTES,
    PROCESSING_LIMIT_S,
    WAIT_FOR_WORKER_S,
    WORKER_ID_HEADER,
    Affinity,
    Choice,
    Health,
    LbWorker,
    answer_headers,
    choose,
    endpoint_of_host,
    forwarded_headers,
    parse_affinity,
)
from podium.errors import BadRequest, PodiumError, ProxyError
from podium.gateway.auth import authorize_client
from podium.gateway.errors import error_response
from podium.gateway.state import GatewayState, state_of
from podium.keys import Scope as KeyScope
from podium.store import JobStore
from podium.store.records import LbLoad, LbLoads

__all__ = ["LbProxy", "LbRouter", "router"]

log = logging.getLogger("podium.gateway.lb")

REFRESH_S = 0.25  # a pool (the registry's ready workers) is read at most this often
LOADS_S = 1.0  # other gateways' load records are read at most this often
POLL_S = 0.1  # a waiting request looks again this often
SWEEP_S = 600.0  # how often a gateway deletes the load records of gateways long gone
KEEPALIVE_S = 2.0  # a gateway with requests in flight republishes its load this often
KEEPALIVE_IDLE_S = 1.5  # under uvicorn's 5 s and gunicorn's 2 s keep-alive
BAD_WORKER_S = 2.0  # a worker that refused a connection is skipped this long
_NOT_LB_S = 2.0  # a Host label that named no load-balancing endpoint: asked again after
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class _BodyTooLarge(Exception):
    pass


class _BodyStalled(Exception):
    pass


@dataclass
class _Pool:
    read_at: float
    ready: list[tuple[str, str]]  # (worker id, url)
    known: frozenset[str]  # every announced worker (ready or initializing)


class LbRouter:
    """One per gateway (GatewayState.lb)."""

    def __init__(
        self,
        store: JobStore,
        lease_s: float,
        wait_s: float = WAIT_FOR_WORKER_S,
        processing_s: float = PROCESSING_LIMIT_S,
        body_idle_s: float = BODY_IDLE_S,
    ) -> None:
        self.store = store
        self.lease_s = lease_s
        self.wait_s = wait_s
        self.processing_s = processing_s
        self.body_idle_s = body_idle_s
        self.instance = uuid.uuid4().hex[:12]  # names this gateway's load records
        self.loads = LbLoads(store)
        self._http: aiohttp.ClientSession | None = None
        # The answer must begin within processing_s (524), and a stream may not fall
        # silent longer (no task per request, as asyncio.wait_for would make).
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=processing_s)
        self.in_flight: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.waiting: dict[str, int] = defaultdict(int)
        self._pools: dict[str, _Pool] = {}
        self._remote: dict[str, LbLoad] = {}
        self._remote_at = 0.0
        self._bad: dict[str, float] = {}  # worker -> skipped until (monotonic)
        self._not_lb: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None

    # --- which endpoint ------------------------------------------------------------------

    async def is_lb(self, state: GatewayState, endpoint_id: str) -> bool:
        """Whether a Host label names a load-balancing endpoint (misses remembered briefly:
        a named gateway host costs no store read per request)."""
        now = time.monotonic()
        if self._not_lb.get(endpoint_id, 0.0) > now:
            return False
        endpoint = await state.lookups.endpoint(endpoint_id)
        if endpoint is not None and endpoint.spec.load_balancer:
            return True
        if len(self._not_lb) > 10_000:
            self._not_lb.clear()
        self._not_lb[endpoint_id] = now + _NOT_LB_S
        return False

    # --- which worker --------------------------------------------------------------------

    async def _pool(self, endpoint_id: str, now_wall: float) -> _Pool:
        now = time.monotonic()
        pool = self._pools.get(endpoint_id)
        if pool is None or now - pool.read_at >= REFRESH_S:
            seen = await self.store.workers(endpoint_id, now_wall - self.lease_s)
            ready = [
                (i.worker_id, str(i.info[ANNOUNCE_URL]))
                for i in seen
                if i.info.get("health") == Health.READY and i.info.get(ANNOUNCE_URL)
            ]
            known = frozenset(
                i.worker_id
                for i in seen
                if i.info.get("health") in (Health.READY, Health.INITIALIZING)
            )
            pool = self._pools[endpoint_id] = _Pool(now, ready, known)
        if now - self._remote_at >= LOADS_S:
            self._remote_at = now
            self._remote = await self.loads.read(now_wall, but=self.instance)
        return pool

    async def acquire(
        self, endpoint_id: str, affinity: Affinity | None, now_wall: Callable[[], float]
    ) -> LbWorker:
        """A ready worker for one request, counted in flight on it (`release` it); waits
        up to `wait_s` for one, counting as waiting meanwhile (the scaler's demand)."""
        deadline = time.monotonic() + self.wait_s
        waited = False
        try:
            while True:
                pool = await self._pool(endpoint_id, now_wall())
                mono = time.monotonic()
                remote = self._remote.get(endpoint_id, LbLoad()).in_flight
                mine = self.in_flight[endpoint_id]
                workers = [
                    LbWorker(wid, url, mine.get(wid, 0) + remote.get(wid, 0))
                    for wid, url in pool.ready
                    if self._bad.get(wid, 0.0) <= mono
                ]
                pick = choose(workers, affinity, pool.known)
                if isinstance(pick, LbWorker):
                    mine[pick.id] += 1
                    self._touch(endpoint_id)
                    return pick
                if pick is Choice.GONE:
                    assert affinity is not None
                    raise ProxyError(
                        404,
                        "affinity_worker_gone",
                        f"Worker {affinity.worker_id} (strict affinity) is gone; send the "
                        f"request without `{WORKER_ID_HEADER}: strict ...` to reach another.",
                    )
                if not waited:
                    waited = True
                    self.waiting[endpoint_id] += 1
                    self._touch(endpoint_id)
                if mono >= deadline:
                    what = (
                        f"worker {affinity.worker_id} stayed busy"
                        if affinity is not None and affinity.strict
                        else "no worker became ready"
                    )
                    raise ProxyError(
                        400,
                        "no_workers",
                        f"No workers available: {what} within {self.wait_s:g} s "
                        f"(endpoint {endpoint_id}).",
                    )
                await asyncio.sleep(min(POLL_S, deadline - mono))
        finally:
            if waited:
                self.waiting[endpoint_id] -= 1
                self._touch(endpoint_id)

    def release(self, endpoint_id: str, worker_id: str) -> None:
        mine = self.in_flight[endpoint_id]
        mine[worker_id] -= 1
        if mine[worker_id] <= 0:
            del mine[worker_id]
        self._touch(endpoint_id)

    def refused(self, endpoint_id: str, worker_id: str) -> None:
        """The worker refused a connection: skip it for a moment, read the pool again."""
        self._bad[worker_id] = time.monotonic() + BAD_WORKER_S
        self._pools.pop(endpoint_id, None)

    # --- this gateway's load, for the others and the scaler ------------------------------

    def _touch(self, endpoint_id: str) -> None:
        self._dirty.add(endpoint_id)
        self._wake.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_loop(), name="lb-load")

    def _load(self, endpoint_id: str) -> LbLoad:
        return LbLoad(self.waiting.get(endpoint_id, 0), dict(self.in_flight.get(endpoint_id, {})))

    async def _publish_loop(self, now_wall: Callable[[], float] = time.time) -> None:
        """Publish changed loads at once (then at most every POLL_S), and busy ones every
        KEEPALIVE_S; an endpoint whose load fell to nothing is published once more."""
        busy: set[str] = set()
        swept = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), KEEPALIVE_S)
            self._wake.clear()
            if now_wall() - swept > SWEEP_S:  # gateways gone for an hour: their records
                swept = now_wall()
                try:
                    await self.loads.sweep(swept)
                except Exception as exc:  # the store is down: the next sweep tries again
                    log.warning("cannot sweep old load records: %s", exc)
            for endpoint_id in self._dirty | busy:
                load = self._load(endpoint_id)
                try:
                    await self.loads.publish(endpoint_id, self.instance, load, now_wall())
                except Exception as exc:  # the store is down: the next change tries again
                    log.warning("cannot publish the load of %s: %s", endpoint_id, exc)
                    continue
                if load.waiting or load.in_flight:
                    busy.add(endpoint_id)
                else:
                    busy.discard(endpoint_id)
            self._dirty.clear()
            await asyncio.sleep(POLL_S)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The workers' client (made on the event loop at first use): keep-alive
        connections, no headers, decompression or redirects of its own."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0, keepalive_timeout=KEEPALIVE_IDLE_S, ttl_dns_cache=60
                ),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                trust_env=False,
            )
            # aiohttp sends an idempotent request again when its kept-alive connection
            # breaks: the worker may have run it (it died mid-request). Never resent here;
            # idle connections are dropped before the usual servers' keep-alive ends.
            self._http._retry_connection = False
        return self._http

    async def close(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        if self._http is not None:
            await self._http.close()


def router_of(state: GatewayState) -> LbRouter:
    if state.lb is None:
        s = state.settings
        state.lb = LbRouter(
            state.store, s.lease_s, s.lb_wait_s, s.lb_processing_s, s.lb_body_idle_s
        )
    return state.lb


class LbProxy:
    """Requests for a load-balancing endpoint, by path (/lb/ENDPOINT_ID/...) or by Host
    (`ENDPOINT_ID.<anything>` of such an endpoint), answered here in plain ASGI: the
    fewest steps between the client's bytes and the worker's. WebSockets go on to the
    router's websocket route under the path form; every other request to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        state = getattr(scope["app"].state, "podium", None) if kind != "lifespan" else None
        if state is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(LB_PATH_PREFIX):
            endpoint_id, _, rest = path[len(LB_PATH_PREFIX) :].partition("/")
            rest = "/" + rest
        else:
            host = next((v for k, v in scope["headers"] if k == b"host"), b"")
            endpoint_id = endpoint_of_host(host.decode("latin-1")) or ""
            if not endpoint_id or not await router_of(state).is_lb(state, endpoint_id):
                await self.app(scope, receive, send)
                return
            rest = path
        if kind == "websocket":
            scope = dict(scope)
            scope["path"] = f"{LB_PATH_PREFIX}{endpoint_id}{rest}"
            scope["raw_path"] = scope["path"].encode()
            await self.app(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await _serve(state, request, endpoint_id, rest, send)
        except PodiumError as exc:
            response = error_response(exc.status, exc.message, exc=exc)
            await response(scope, receive, send)


router = APIRouter(tags=["load balancing"])


def _target(worker: LbWorker, path: str, query: bytes, websocket: bool = False) -> str:
    url = worker.url.replace("http://", "ws://", 1) if websocket else worker.url
    return f"{url}{path}" + (f"?{query.decode('latin-1')}" if query else "")


class _Body:
    """A request body streamed on: counted (413 past MAX_BODY_BYTES), each chunk within
    the idle limit (408), and whether the worker may have seen any of it."""

    def __init__(self, receive: Receive, idle_s: float) -> None:
        self.receive = receive
        self.idle_s = idle_s
        self.started = False
        self.size = 0
        self.failed: Exception | None = None  # why it was cut (the client wraps it)

    async def stream(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            try:
                message = await asyncio.wait_for(self.receive(), self.idle_s)
            except TimeoutError:
                self.failed = _BodyStalled()
                raise self.failed from None
            if message["type"] == "http.disconnect":
                self.failed = _BodyStalled()
                raise self.failed
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > MAX_BODY_BYTES:
                self.failed = _BodyTooLarge()
                raise self.failed
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


async def _entry(request: Request, endpoint_id: str) -> LbRouter:
    """Who may call it (a key that may run on the endpoint) and that it balances."""
    state = state_of(request)
    await authorize_client(request, KeyScope.RUN, endpoint_id)
    endpoint = await state.endpoint(endpoint_id)
    if not endpoint.spec.load_balancer:
        raise BadRequest(
            f"Endpoint {endpoint_id} is a QUEUE endpoint: send jobs to /v2/{endpoint_id}/run "
            "(only LOAD_BALANCER endpoints answer on /lb/... or their own host name)."
        )
    return router_of(state)


_WORKER_HEADER = WORKER_ID_HEADER.lower().encode()


async def _serve(
    state: GatewayState, request: Request, endpoint_id: str, path: str, send: Send
) -> None:
    """One request: a worker (waiting for one if need be), the request streamed to it, its
    answer streamed back. A worker that refuses the connection never saw the request: the
    next one takes it; once a worker may have seen it, it is not sent again."""
    lb = await _entry(request, endpoint_id)
    scope = request.scope
    headers = scope["headers"]
    length = next((v for k, v in headers if k == b"content-length"), None)
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise ProxyError(413, "too_large", f"The request body is over {MAX_BODY_BYTES} bytes.")
    chunked = any(k == b"transfer-encoding" and b"chunked" in v.lower() for k, v in headers)
    affinity = parse_affinity(request.headers.get(WORKER_ID_HEADER))
    client = scope.get("client")
    host = next((v for k, v in headers if k == b"host"), b"").decode("latin-1")
    forwarded = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in forwarded_headers(
            headers, client[0] if client else None, host, scope.get("scheme", "http")
        )
        if k != _WORKER_HEADER
    ]
    body = _Body(request.receive, lb.body_idle_s)
    has_body = (length is not None and length != b"0") or chunked
    began = time.monotonic()
    while True:
        worker = await lb.acquire(endpoint_id, affinity, state.clock.now)
        try:
            answer = await lb.http.request(
                request.method,
                _target(worker, path, scope["query_string"]),
                headers=forwarded,
                data=body.stream() if has_body else None,
                allow_redirects=False,
                compress=None,
                timeout=lb.timeout,
            )
        except BaseException as exc:
            lb.release(endpoint_id, worker.id)
            if isinstance(exc, aiohttp.ClientConnectorError) and not body.started:
                lb.refused(endpoint_id, worker.id)  # it never saw the request: another
                continue
            error = _upstream_error(body.failed or exc, worker, lb)
            if error is None:
                raise
            state.metrics.lb_request(endpoint_id, error.status, time.monotonic() - began)
            response = JSONResponse(
                {"error": error.message, "code": error.code},
                status_code=error.status,
                headers={WORKER_ID_HEADER: worker.id},
            )
            await response(scope, request.receive, send)
            return
        break
    state.metrics.lb_request(endpoint_id, answer.status, time.monotonic() - began)
    try:
        await _relay(answer, worker, scope, request.receive, send)
    finally:
        answer.release()
        lb.release(endpoint_id, worker.id)


def _upstream_error(exc: BaseException, worker: LbWorker, lb: LbRouter) -> ProxyError | None:
    if isinstance(exc, _BodyTooLarge):
        return ProxyError(413, "too_large", f"The request body is over {MAX_BODY_BYTES} bytes.")
    if isinstance(exc, _BodyStalled):
        what = f"The request body stalled for {lb.body_idle_s:g} s."
        return ProxyError(408, "body_timeout", what)
    if isinstance(exc, TimeoutError):
        return ProxyError(
            524,
            "timeout",
            f"Worker {worker.id} did not begin its answer within {lb.processing_s:g} s.",
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ProxyError(
            502,
            "worker_failed",
            f"Worker {worker.id} failed before answering ({type(exc).__name__}); the "
            "request was not retried (it may have run).",
        )
    return None


async def _relay(
    answer: aiohttp.ClientResponse, worker: LbWorker, scope: Scope, receive: Receive, send: Send
) -> None:
    """The worker's answer passed on as its bytes arrive. One of known length is simply
    copied; a stream (SSE, chunked) also watches the client, and ends when it leaves."""
    raw = [*answer_headers(answer.raw_headers), (_WORKER_HEADER, worker.id.encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": raw})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return

    async def copy() -> None:
        try:
            async for chunk in answer.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (aiohttp.ClientError, OSError) as exc:  # the worker died mid-answer: cut
            log.warning("worker %s: its answer broke off: %s", worker.id, exc)
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    if answer.content_length is not None:
        await copy()
        return
    async with anyio.create_task_group() as group:

        async def stream() -> None:
            await copy()
            group.cancel_scope.cancel()

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(stream)
        group.start_soon(gone)


@router.websocket(LB_PATH_PREFIX + "{endpoint_id}/{path:path}")
async def proxy_websocket(websocket: WebSocket, endpoint_id: str, path: str) -> None:
    """A WebSocket to the worker's server, relayed both ways until either side closes."""
    try:
        as_request = cast(Request, websocket)
        lb = await _entry(as_request, endpoint_id)
        affinity = parse_affinity(websocket.headers.get(WORKER_ID_HEADER))
        worker = await lb.acquire(endpoint_id, affinity, state_of(as_request).clock.now)
    except PodiumError as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    try:
        headers = forwarded_headers(
            [
                (k, v)
                for k, v in websocket.scope["headers"]
                if not k.lower().startswith(b"sec-websocket") and k.lower() != b"origin"
            ],
            websocket.client.host if websocket.client else None,
            websocket.headers.get("host", ""),
            "ws",
        )
        protocols = websocket.scope.get("subprotocols") or None
        target = _target(worker, "/" + path, websocket.scope["query_string"], websocket=True)
        try:
            upstream = await websockets.connect(
                target,
                additional_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                subprotocols=protocols,
                max_size=MAX_BODY_BYTES,
                open_timeout=10,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            await websocket.close(code=1011, reason=f"worker {worker.id}: {exc}"[:120])
            return
        await websocket.accept(
            subprotocol=upstream.subprotocol,
            headers=[(WORKER_ID_HEADER.lower().encode(), worker.id.encode())],
        )
        await _relay_websocket(websocket, upstream)
    finally:
        lb.release(endpoint_id, worker.id)


async def _relay_websocket(client: WebSocket, upstream: Any) -> None:
    async with anyio.create_task_group() as group:

        async def up() -> None:
            try:
                while True:
                    message = await client.receive()
                    if message["type"] == "websocket.disconnect":
                        await upstream.close()
                        break
                    if message.get("bytes") is not None:
                        await upstream.send(message["bytes"])
                    elif message.get("text") is not None:
                        await upstream.send(message["text"])
            except ConnectionClosed:
                pass
            group.cancel_scope.cancel()

        async def down() -> None:
            try:
                async for data in upstream:
                    if isinstance(data, bytes):
                        await client.send_bytes(data)
                    else:
                        await client.send_text(data)
                code = upstream.close_code or 1000
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1011
            with contextlib.suppress(Exception):
                await client.close(code=code)
            group.cancel_scope.cancel()

        group.start_soon(up)
        group.start_soon(down)
    with contextlib.suppress(Exception):
        await upstream.close()
