"""Python client for a Podium (or RunPod) gateway: the v2 client API and the admin API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from podium.errors import PodiumHTTPError
from podium.jobs import FINAL_STATUSES, JobStatus

__all__ = ["AsyncPodiumClient", "PodiumClient", "PodiumHTTPError"]


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
            # Podium's {"error": ...}, or RunPod REST v2's {"title", "status", "detail"}
            message = body.get("error") or body.get("detail") or body.get("title")
        except (ValueError, AttributeError):
            message = None
        message = message if isinstance(message, str) and message else response.text
        raise PodiumHTTPError(response.status_code, message)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _log_params(
    tail: int, worker: str | None, job: str | None, since: int | None
) -> dict[str, Any]:
    given = {"tail": tail, "worker": worker, "job": job, "since": since}
    return {k: v for k, v in given.items() if v is not None}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class PodiumClient:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        timeout: float = 30.0,
        *,
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: a client already set up (its base URL and key; the CLI's tests pass an
        in-process gateway's), instead of one to `url`."""
        self.url = url.rstrip("/")
        self._http = http or httpx.Client(
            base_url=self.url, headers=_headers(api_key), timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PodiumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # v2 client API
    def run(self, endpoint_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = _check(self._http.post(f"/v2/{endpoint_id}/run", json=payload))
        return job

    def runsync(self, endpoint_id: str, payload: dict[str, Any], wait_ms: int = 90_000) -> Any:
        return _check(
            self._http.post(
                f"/v2/{endpoint_id}/runsync",
                params={"wait": wait_ms},
                json=payload,
                timeout=wait_ms / 1000 + 10,
            )
        )

    def status(self, endpoint_id: str, job_id: str, wait_ms: int | None = None) -> Any:
        params = {"wait": wait_ms} if wait_ms else None
        timeout = (wait_ms or 0) / 1000 + 10
        return _check(
            self._http.get(f"/v2/{endpoint_id}/status/{job_id}", params=params, timeout=timeout)
        )

    def cancel(self, endpoint_id: str, job_id: str) -> Any:
        return _check(self._http.post(f"/v2/{endpoint_id}/cancel/{job_id}"))

    def health(self, endpoint_id: str) -> Any:
        return _check(self._http.get(f"/v2/{endpoint_id}/health"))

    def metrics(self, endpoint_id: str, interval: str = "1h") -> Any:
        """The endpoint's metrics over time (docs/api.md, "Metrics over time")."""
        return _check(self._http.get(f"/v2/{endpoint_id}/metrics", params={"interval": interval}))

    def wait(
        self,
        endpoint_id: str,
        job_id: str,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Long-poll status until the job is final, calling on_update on each change."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status: dict[str, Any] = self.status(endpoint_id, job_id, wait_ms=1_000)
            if on_update:
                on_update(status)
            if JobStatus(status["status"]) in FINAL_STATUSES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status

    # admin API
    def create_endpoint(self, **spec: Any) -> Any:
        return _check(self._http.post("/v1/endpoints", json=spec))

    def list_endpoints(self) -> Any:
        return _check(self._http.get("/v1/endpoints"))

    def get_endpoint(self, endpoint_id: str) -> Any:
        return _check(self._http.get(f"/v1/endpoints/{endpoint_id}"))

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> Any:
        return _check(self._http.patch(f"/v1/endpoints/{endpoint_id}", json=changes))

    def delete_endpoint(self, endpoint_id: str) -> Any:
        return _check(self._http.delete(f"/v1/endpoints/{endpoint_id}"))

    def endpoint_logs(
        self,
        endpoint_id: str,
        tail: int = 100,
        worker: str | None = None,
        job: str | None = None,
        since: int | None = None,
    ) -> Any:
        """{"endpointId", "lines": [{"seq", "workerId", "time", "text", "jobs"}], "cursor"}."""
        params = _log_params(tail, worker, job, since)
        return _check(self._http.get(f"/v1/endpoints/{endpoint_id}/logs", params=params))

    def follow_logs(
        self,
        endpoint_id: str,
        tail: int = 100,
        worker: str | None = None,
        job: str | None = None,
        since: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The lines `endpoint_logs` would give, then each new one as the gateway gets it
        (heartbeats, `{"heartbeat": time, "cursor": n}`, too); runs until the caller
        stops iterating or the connection ends."""
        params = {**_log_params(tail, worker, job, since), "follow": "true"}
        timeout = httpx.Timeout(30.0, read=None)  # heartbeats come every 15 s
        url = f"/v1/endpoints/{endpoint_id}/logs"
        with self._http.stream("GET", url, params=params, timeout=timeout) as r:
            if r.status_code >= 400:
                r.read()
                _check(r)
            for raw in r.iter_lines():
                if raw.strip():
                    yield json.loads(raw)

    def list_templates(self) -> Any:
        return _check(self._http.get("/v1/templates"))

    def create_template(
        self,
        name: str,
        command: str | None,
        env: dict[str, str],
        image: str | None = None,
        registry_id: str | None = None,
    ) -> Any:
        """A template: a command, or an image (with its own CMD when command is None)."""
        body: dict[str, Any] = {"name": name, "command": command, "env": env}
        if image is not None:
            body["imageName"] = image
        if registry_id is not None:
            body["containerRegistryAuthId"] = registry_id
        return _check(self._http.post("/v1/templates", json=body))

    # RunPod REST v2 resources
    def list_snapshots(self) -> Any:
        return _check(self._http.get("/v1/snapshots"))

    def delete_snapshot(self, key: str) -> Any:
        return _check(self._http.delete(f"/v1/snapshots/{key}"))

    def create_network_volume(self, name: str, size_gb: int, data_center: str) -> Any:
        body = {"name": name, "size": size_gb, "dataCenter": data_center}
        return _check(self._http.post("/v2/network-volumes", json=body))

    def list_network_volumes(self) -> Any:
        return _check(self._http.get("/v2/network-volumes"))

    def delete_network_volume(self, volume_id: str) -> Any:
        return _check(self._http.delete(f"/v2/network-volumes/{volume_id}"))

    def create_registry(self, name: str, username: str, password: str) -> Any:
        body = {"name": name, "username": username, "password": password}
        return _check(self._http.post("/v2/registries", json=body))

    def list_registries(self) -> Any:
        return _check(self._http.get("/v2/registries"))

    def delete_registry(self, registry_id: str) -> Any:
        return _check(self._http.delete(f"/v2/registries/{registry_id}"))

    def gpus(self) -> Any:
        return _check(self._http.get("/v1/gpus"))

    def create_key(self, name: str, scopes: list[str], endpoints: list[str]) -> Any:
        body = {"name": name, "scopes": scopes, "endpoints": endpoints}
        return _check(self._http.post("/v1/keys", json=body))

    def list_keys(self) -> Any:
        return _check(self._http.get("/v1/keys"))

    def revoke_key(self, key_id: str) -> Any:
        return _check(self._http.delete(f"/v1/keys/{key_id}"))


class AsyncPodiumClient:
    def __init__(self, url: str, api_key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_headers(api_key), timeout=timeout
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, endpoint_id: str, payload: dict[str, Any]) -> Any:
        return _check(await self._http.post(f"/v2/{endpoint_id}/run", json=payload))

    async def runsync(
        self, endpoint_id: str, payload: dict[str, Any], wait_ms: int = 90_000
    ) -> Any:
        return _check(
            await self._http.post(
                f"/v2/{endpoint_id}/runsync",
                params={"wait": wait_ms},
                json=payload,
                timeout=wait_ms / 1000 + 10,
            )
        )

    async def status(self, endpoint_id: str, job_id: str, wait_ms: int | None = None) -> Any:
        params = {"wait": wait_ms} if wait_ms else None
        return _check(
            await self._http.get(
                f"/v2/{endpoint_id}/status/{job_id}",
                params=params,
                timeout=(wait_ms or 0) / 1000 + 10,
            )
        )
