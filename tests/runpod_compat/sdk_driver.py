"""Drives the official `runpod` client SDK, unmodified, for the compatibility tests.

Runs under .venv-runpod/bin/python with RUNPOD_ENDPOINT_BASE_URL=<gateway>/v2 (read by
the SDK at import). Reads one JSON request per line on stdin ({"op": ..., ...}) and
answers one line per request on stdout: `@@RESULT {"ok": true, "result": ...}` or
`@@RESULT {"ok": false, "type": ..., "error": ...}`. One process serves a whole test
session, so the SDK is imported once.
"""

import asyncio
import json
import sys
import time
import traceback

import runpod
from runpod.endpoint.runner import Job
from runpod.http_client import ClientSession

PREFIX = "@@RESULT "


def endpoint(a):
    """`Endpoint(id, api_key=...)`, or the module-global `runpod.api_key` when asked."""
    if a.get("global_key"):
        runpod.api_key = a["key"]
        return runpod.Endpoint(a["endpoint"])
    runpod.api_key = None
    return runpod.Endpoint(a["endpoint"], api_key=a["key"])


def wait_status(job, wanted, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = job.status()
        seen.append(status)
        if status == wanted:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"job {job.job_id} never reached {wanted}; saw {seen[-5:]}")


def op_run_status_output(a):
    ep = endpoint(a)
    job = ep.run(a["input"])
    first = job.status()
    output = job.output(timeout=a.get("timeout", 30))
    return {"id": job.job_id, "first_status": first, "output": output, "status": job.status()}


def op_run_sync(a):
    return endpoint(a).run_sync(a["input"], timeout=a.get("timeout", 60))


def op_stream(a):
    job = endpoint(a).run(a["input"])
    chunks = list(job.stream())
    return {"id": job.job_id, "chunks": chunks, "status": job.status(), "output": job.output()}


def op_cancel(a):
    job = endpoint(a).run(a["input"])
    seen = wait_status(job, a["cancel_when"], a.get("timeout", 20))
    reply = job.cancel()
    return {"id": job.job_id, "seen": seen, "cancel": reply, "status": job.status()}


def op_cancel_job(a):
    """Cancel a job by id through the SDK's Job object (as a caller holding the id would)."""
    job = Job(a["endpoint"], a["id"], endpoint(a).rp_client)
    reply = job.cancel()
    return {"cancel": reply, "status": job.status()}


def op_submit(a):
    ep = endpoint(a)
    return [ep.run(inp).job_id for inp in a["inputs"]]


def op_health(a):
    return endpoint(a).health()


def op_purge_queue(a):
    return endpoint(a).purge_queue()


async def _async_flow(a):
    async with ClientSession() as session:
        ep = runpod.AsyncioEndpoint(a["endpoint"], session, api_key=a["key"])
        job = await ep.run(a["input"])
        first = await job.status()
        output = await job.output(timeout=a.get("timeout", 30))
        result = {"id": job.job_id, "first_status": first, "output": output}
        result["status"] = await job.status()
        result["health"] = await ep.health()
        if a.get("queued_endpoint"):
            queued = runpod.AsyncioEndpoint(a["queued_endpoint"], session, api_key=a["key"])
            qjob = await queued.run({"never": "runs"})
            result["queued_status"] = await qjob.status()
            result["cancel"] = await qjob.cancel()
            result["cancelled_status"] = await qjob.status()
            await queued.run({"never": "runs either"})
            result["purge"] = await queued.purge_queue()
        return result


def op_async_flow(a):
    return asyncio.run(_async_flow(a))


async def _async_stream(a):
    async with ClientSession() as session:
        ep = runpod.AsyncioEndpoint(a["endpoint"], session, api_key=a["key"])
        job = await ep.run(a["input"])
        chunks = [chunk async for chunk in job.stream()]
        return {"id": job.job_id, "chunks": chunks, "status": await job.status()}


def op_async_stream(a):
    return asyncio.run(_async_stream(a))


# --- the management API: the SDK speaks GraphQL to RUNPOD_API_BASE_URL/graphql ----------


def op_manage(a):
    """create_template, create_endpoint, get_endpoints, update_endpoint_template."""
    runpod.api_key = a["key"]
    template = runpod.create_template(
        name=a["template_name"],
        image_name="runpod/base:0.6.2",
        docker_start_cmd=a["command"],
        env={"GREETING": "hi"},
        is_serverless=True,
    )
    endpoint = runpod.create_endpoint(
        name=a["endpoint_name"], template_id=template["id"], workers_max=2
    )
    listed = runpod.get_endpoints()
    other = runpod.create_template(
        name=a["template_name"] + "-2", image_name="x", docker_start_cmd=a["command"]
    )
    updated = runpod.update_endpoint_template(endpoint["id"], other["id"])
    return {
        "template": template,
        "endpoint": endpoint,
        "listed": listed,
        "other": other,
        "updated": updated,
    }


def op_graphql_error(a):
    """A call the SDK makes that Podium does not serve, or with a wrong key."""
    runpod.api_key = a["key"]
    return getattr(runpod, a["call"])(*a.get("args", []))


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply = {"ok": True, "result": OPS[request["op"]](request)}
        except Exception as exc:
            reply = {
                "ok": False,
                "type": type(exc).__name__,
                "error": str(exc),
                "traceback": traceback.format_exc(),
            }
        print(PREFIX + json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
