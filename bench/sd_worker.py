"""SD worker benchmark: a direct diffusers call vs SDHandler vs a real gateway + worker.

Same model (same seeded random weights in both processes), same settings (128x128, 4 steps,
PNDM, fixed prompts and seeds), same torch thread count, in one run:

 (a) direct    one plain `pipe(prompt=..., generator=...)` call in this process;
 (b) handler   SDHandler.handle_batch in this process (validation, a per-call scheduler
               and pipeline, PNG encoding);
 (c) system    a real `podium serve` (SQLite, --no-supervisor) and a real
               `podium worker --template sd15` process (its own copy of the model): the
               job goes /run -> the worker's job-take -> handler -> job-done, and the client
               waits with /status?wait= until COMPLETED. Reported: the client's wall time
               per image, the job's executionTime (gateway clock, take -> job-done) and the
               worker's own time per job (its log: start -> result acknowledged), so that
               the split handler vs gateway/transport is visible.

Part 1, one image at a time: N rounds of a, b, c in turn (never two at once: the worker
idles on its long-poll while this process computes, and this process waits on HTTP while
the worker computes), so that all three see the same background load. Overhead is
(c - a) / a on the medians; target <= 3%.

Part 2, batching: for each batch size b, b concurrent jobs through one direct call, one
handle_batch, and the system (b jobs submitted back to back behind a 2-step primer job, so
that they queue while it runs, as under load; the worker takes them as one batch:
`--batch-size` = the largest b). images/s from the first submit (system: from the primer's
COMPLETED) to the last COMPLETED. Batch 1 is part 1's medians, where each job arrives alone
and starts at once (no batch-fill wait).

    .venv/bin/python bench/sd_worker.py                 # sd15-random, 128², 4 steps, b=1,2,4
    .venv/bin/python bench/sd_worker.py --quick         # 2 steps, b=1,2, 2 rounds
    .venv/bin/python bench/sd_worker.py --model tiny    # seconds, for a smoke test
    .venv/bin/python bench/sd_worker.py --no-system     # (a) and (b) only, no processes

`measure_direct` and `measure_batches` are reused by bench/gpu_sd.py. Everything runs on
127.0.0.1; every wait is bounded. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))  # control_plane (gateway helpers), imported lazily

PROMPTS = [
    "A cute fluffy white dog in the style of a Pixar animation 3D drawing.",
    "A lighthouse on a cliff at sunset, oil painting.",
    "A bowl of ramen, studio photo, 50mm.",
    "An astronaut riding a horse on the moon.",
]


@dataclass(frozen=True, slots=True)
class Measurement:
    mode: str
    batch: int
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def s_per_image(self) -> float:
        return self.seconds / self.images


def machine_info() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    info = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def jobs_for(batch: int, *, size: int, steps: int, scheduler: str = "PNDM") -> list[dict[str, Any]]:
    """`batch` concurrent jobs: different prompts and seeds, settings that share one call."""
    return [
        {
            "id": f"bench-{batch}-{i}",
            "input": {
                "prompt": PROMPTS[i % len(PROMPTS)],
                "width": size,
                "height": size,
                "num_inference_steps": steps,
                "scheduler": scheduler,
                "seed": i,
            },
        }
        for i in range(batch)
    ]


def measure_direct(
    pipe: Any, *, batch: int, size: int, steps: int, rounds: int = 1, warmup: bool = True
) -> Measurement:
    """One plain `pipe(prompt=[...])` call of `batch` images per round (PIL out, no encoding)."""
    import torch

    def call(n_steps: int) -> None:
        pipe(
            prompt=[PROMPTS[i % len(PROMPTS)] for i in range(batch)],
            height=size,
            width=size,
            num_inference_steps=n_steps,
            generator=[torch.Generator("cpu").manual_seed(i) for i in range(batch)],
        )

    if warmup:
        call(1)
    _sync()
    start = time.perf_counter()
    for _ in range(rounds):
        call(steps)
    _sync()
    return Measurement("direct pipe()", batch, batch * rounds, time.perf_counter() - start)


def measure_batches(
    handler: Any,
    *,
    batches: Sequence[int],
    size: int,
    steps: int,
    rounds: int = 1,
    warmup: bool = True,
    warmup_steps: int = 1,
    mode: str = "SDHandler.handle_batch",
) -> list[Measurement]:
    """For each b: `rounds` calls of handle_batch with b concurrent jobs (after a warm-up
    call of the same batch size, where torch.compile, if on, compiles that shape)."""
    results = []
    for batch in batches:
        jobs = jobs_for(batch, size=size, steps=steps)
        if warmup:
            handler.handle_batch(jobs_for(batch, size=size, steps=warmup_steps))
        _sync()
        start = time.perf_counter()
        for _ in range(rounds):
            outputs = handler.handle_batch(jobs)
            errors = [o for o in outputs if isinstance(o, dict)]
            if errors:
                raise RuntimeError(f"handle_batch failed: {errors[0]}")
        _sync()
        results.append(Measurement(mode, batch, batch * rounds, time.perf_counter() - start))
    return results


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def format_table(rows: Sequence[Measurement], baseline: Measurement | None = None) -> str:
    head = f"{'mode':<26} {'batch':>5} {'images':>6} {'seconds':>9} {'images/s':>9} {'s/image':>9}"
    lines = [head + (f" {'vs base':>8}" if baseline else ""), "-" * (len(head) + 9)]
    for m in rows:
        line = (
            f"{m.mode:<26} {m.batch:>5} {m.images:>6} {m.seconds:>9.2f} "
            f"{m.images_per_s:>9.3f} {m.s_per_image:>9.2f}"
        )
        if baseline:
            line += f" {m.images_per_s / baseline.images_per_s:>7.2f}x"
        lines.append(line)
    return "\n".join(lines)


# --- (c): a real gateway and a real SD worker process ---------------------------------

JOB_TIMEOUT_S = 900.0  # one job or one batch, submit to COMPLETED, at most
WORKER_LOAD_TIMEOUT_S = 600.0  # worker start: imports and model load
_DONE_LINE = re.compile(r"job (\S+) COMPLETED in ([0-9.]+) s")


@dataclass(frozen=True, slots=True)
class SystemJob:
    """One job through the gateway and the worker; seconds, all of them."""

    wall: float  # client: /run sent -> COMPLETED read (the batch's last, for a batch)
    execution: float  # gateway: executionTime (take -> job-done)
    delay: float  # gateway: delayTime (submit -> take)
    worker: float | None  # worker log: job started -> result acknowledged


class System:
    """`podium serve` + `podium worker --template sd15 --model M` on 127.0.0.1."""

    def __init__(self, model: str, tmp: Path, threads: int, batch_size: int) -> None:
        import control_plane as cp

        self._cp = cp
        self.gw = cp.Gateway(tmp / "gateway", None, extra_args=["--no-supervisor"])
        self.gw.start()
        try:
            self._start_worker(model, tmp, threads, batch_size)
        except BaseException:
            self.gw.stop()
            raise

    def _start_worker(self, model: str, tmp: Path, threads: int, batch_size: int) -> None:
        cp = self._cp
        self.key = self.gw.admin_key
        with self.gw.client() as c:
            r = c.post(
                "/v1/endpoints",
                json={"name": "bench-sd", "templateId": "sd15", "model": model, "workersMax": 0},
            )
            r.raise_for_status()
            self.ep = r.json()
        self.log_path = tmp / "sd-worker.log"
        env = cp.clean_env()
        env.update(
            PODIUM_DATA_DIR=str(tmp / "worker"),
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            TOKENIZERS_PARALLELISM="false",
        )
        args = [
            sys.executable,
            "-m",
            "podium.cli",
            "worker",
            "--gateway",
            self.gw.url,
            "--endpoint",
            self.ep["id"],
            "--token",
            self.ep["workerToken"],
            "--template",
            "sd15",
            "--model",
            model,
            "--batch-size",
            str(batch_size),
        ]
        self.started = time.perf_counter()
        self.proc = cp.spawn(args, self.log_path, env)
        self.conn = cp.Conn(
            self.gw.port,
            {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )

    def wait_ready(self) -> float:
        """Seconds from the worker's spawn until it long-polls (imports + model load)."""

        def polling() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("the SD worker exited:\n" + self.log_tail())
            return self.gw.health(self.ep["id"])["workers"]["idle"] >= 1

        self._cp.wait_until("the SD worker to long-poll", polling, timeout=WORKER_LOAD_TIMEOUT_S)
        return time.perf_counter() - self.started

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def _worker_times(self) -> dict[str, float]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return {m.group(1): float(m.group(2)) for m in _DONE_LINE.finditer(text)}

    def _submit(self, item: dict[str, Any]) -> str:
        status, body = self.conn.call(
            "POST", f"/v2/{self.ep['id']}/run", json.dumps({"input": item})
        )
        if status != 200:
            raise RuntimeError(f"/run: HTTP {status} {body}")
        return body["id"]

    def _wait_final(
        self, job_id: str, deadline: float, until_not: tuple[str, ...] = ("IN_QUEUE", "IN_PROGRESS")
    ) -> None:
        path = f"/v2/{self.ep['id']}/status/{job_id}?wait=10000"
        while self.conn.call("GET", path)[1]["status"] in until_not:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"job {job_id} did not finish:\n{self.log_tail()}")

    def _wait_running(self, job_id: str, deadline: float) -> None:
        """Until the job's handler reports progress (its first step is done); polled every
        50 ms (a status `wait` wakes on status changes, not on progress)."""
        path = f"/v2/{self.ep['id']}/status/{job_id}"
        while True:
            time.sleep(0.05)
            body = self.conn.call("GET", path)[1]
            if body["status"] != "IN_QUEUE" and (
                body.get("output") or body["status"] != "IN_PROGRESS"
            ):
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"job {job_id} did not start:\n{self.log_tail()}")

    def run(
        self, inputs: list[dict[str, Any]], primer: dict[str, Any] | None = None
    ) -> tuple[float, list[SystemJob]]:
        """Submit every input with /run, back to back; wait for each with /status?wait=
        until COMPLETED. Returns (seconds from the first submit to the last COMPLETED,
        one SystemJob per input). With a `primer` job submitted first, the inputs queue
        while it runs (load): the seconds then run from the primer's COMPLETED."""
        ep = self.ep["id"]
        self.conn.reconnect()  # the last one idled while the other paths ran: untimed
        t0 = time.perf_counter()
        deadline = time.monotonic() + JOB_TIMEOUT_S
        primer_id = None
        if primer is not None:
            primer_id = self._submit(primer)
            self._wait_running(primer_id, deadline)  # alone, past its ask for company
        ids = [self._submit(item) for item in inputs]
        if primer_id is not None:
            self._wait_final(primer_id, deadline)
            t0 = time.perf_counter()
        finals = []
        for job_id in ids:
            while True:
                status, body = self.conn.call("GET", f"/v2/{ep}/status/{job_id}?wait=10000")
                if status != 200:
                    raise RuntimeError(f"/status: HTTP {status} {body}")
                if body["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
                    break
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"job {job_id} did not finish:\n{self.log_tail()}")
            if body["status"] != "COMPLETED":
                raise RuntimeError(f"job {job_id} ended {body['status']}: {body.get('error')}")
            finals.append((time.perf_counter() - t0, body))
        total = time.perf_counter() - t0
        worker: dict[str, float] = {}
        for _ in range(20):  # the worker logs a job after the gateway has answered it
            worker = self._worker_times()
            if all(job_id in worker for job_id in ids):
                break
            time.sleep(0.05)
        jobs = [
            SystemJob(
                wall=wall,
                execution=body["executionTime"] / 1000,
                delay=body["delayTime"] / 1000,
                worker=worker.get(body["id"]),
            )
            for wall, body in finals
        ]
        return total, jobs

    def close(self) -> None:
        self.conn.close()
        self._cp.stop(self.proc, grace=30)
        self.gw.stop()


# --- the run -------------------------------------------------------------------------


@dataclass
class Series:
    """Seconds per image of one path over the rounds of part 1."""

    path: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)


def inputs_for(batch: int, *, size: int, steps: int) -> list[dict[str, Any]]:
    return [job["input"] for job in jobs_for(batch, size=size, steps=steps)]


def _pct(x: float, base: float) -> str:
    return f"{(x - base) / base:+.1%}"


def _ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms"


def environment(threads: int) -> list[tuple[str, str]]:
    import psutil

    import podium

    info = machine_info()
    cpu = info["cpu"]
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ", no GPU"
    return [
        (
            "Machine",
            f"{cpu}, {info['cpus']} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
            f"{gpu}, {info['platform']}",
        ),
        ("Python", info["python"]),
        ("Podium", podium.__version__),
        ("torch", f"{info['torch']} ({threads} threads in both processes)"),
        ("diffusers", info["diffusers"]),
        ("transformers", info["transformers"]),
    ]


@dataclass
class Results:
    seq: dict[str, Series] = field(
        default_factory=lambda: {k: Series(k) for k in ("direct", "handler", "system")}
    )
    split: list[SystemJob] = field(default_factory=list)  # part 1, (c)
    batched: dict[int, dict[str, float]] = field(default_factory=dict)  # b -> path -> images/s
    batch_jobs: dict[int, list[SystemJob]] = field(default_factory=dict)  # part 2, (c)
    loads: dict[str, float] = field(default_factory=dict)
    faults: dict[str, list[int]] = field(  # part 1: minor page faults per image
        default_factory=lambda: {"direct": [], "system": []}
    )


def _minor_faults(pid: int) -> int:
    """Minor page faults of a process so far (/proc/PID/stat field 10); 0 if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[7])


def run_all(args: argparse.Namespace, batches: list[int], tmp: Path, res: Results) -> None:
    """Load, warm up, part 1 (a b c in turn), part 2 (batches); fills `res`."""
    from podium.sd.handler import SDHandler

    system: System | None = None
    try:
        if not args.no_system:  # its model loads while this process loads its own
            system = System(args.model, tmp, args.threads, max(batches))
        t0 = time.perf_counter()
        handler = SDHandler(
            args.model,
            data_dir=tmp / "bench",
            device=args.device,
            dtype=args.dtype,
            max_batch=max(batches),
        )
        res.loads["this process"] = time.perf_counter() - t0
        if system is not None:
            res.loads["worker (spawn -> polling)"] = system.wait_ready()
        print(
            "load: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in res.loads.items())
            + (" (overlapping, not measured)" if system is not None else ""),
            flush=True,
        )
        pipe = handler.pipe
        kw = {"size": args.size, "steps": args.steps}

        # Warm-up, then part 1: one image at a time, a b c in turn.
        measure_direct(pipe, batch=1, size=args.size, steps=1, warmup=False)
        measure_batches(handler, batches=[1], size=args.size, steps=1, warmup=False)
        if system is not None:
            system.run(inputs_for(1, size=args.size, steps=1))
        for i in range(args.images):
            faults = _minor_faults(os.getpid())
            m = measure_direct(pipe, batch=1, warmup=False, **kw)
            res.faults["direct"].append(_minor_faults(os.getpid()) - faults)
            res.seq["direct"].seconds.append(m.seconds)
            [m] = measure_batches(handler, batches=[1], warmup=False, **kw)
            res.seq["handler"].seconds.append(m.seconds)
            line = f"round {i + 1}/{args.images}: direct {res.seq['direct'].seconds[-1]:.2f} s"
            line += f", handler {res.seq['handler'].seconds[-1]:.2f} s"
            if system is not None:
                faults = _minor_faults(system.proc.pid)
                wall, [job] = system.run(inputs_for(1, **kw))
                res.faults["system"].append(_minor_faults(system.proc.pid) - faults)
                res.seq["system"].seconds.append(wall)
                res.split.append(job)
                line += f", system {wall:.2f} s (executionTime {job.execution:.2f} s)"
            print(line + f"  [load {os.getloadavg()[0]:.2f}]", flush=True)

        # Part 2: batches, b concurrent jobs per call (batch 1 is part 1).
        for b in batches:
            if b == 1:
                continue
            row: dict[str, float] = {}
            m = measure_direct(pipe, batch=b, rounds=args.rounds, **kw)
            row["direct"] = m.images_per_s
            [m] = measure_batches(handler, batches=[b], rounds=args.rounds, **kw)
            row["handler"] = m.images_per_s
            if system is not None:
                primer = inputs_for(1, size=args.size, steps=2)[0]  # progress after step 1
                system.run(inputs_for(b, size=args.size, steps=1), primer)  # warm-up, this b
                seconds, jobs = 0.0, []
                for _ in range(args.rounds):
                    total, done = system.run(inputs_for(b, **kw), primer)
                    seconds += total
                    jobs += done
                row["system"] = b * args.rounds / seconds
                res.batch_jobs[b] = jobs
            res.batched[b] = row
            print(
                f"batch {b}: "
                + ", ".join(f"{k} {v:.3f} images/s" for k, v in row.items())
                + f"  [load {os.getloadavg()[0]:.2f}]",
                flush=True,
            )
    finally:
        if system is not None:
            system.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sd15-random", help="sd15-random (default), tiny, ...")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batches", default="1,2,4", help="comma-separated batch sizes")
    parser.add_argument("--images", type=int, default=6, help="part 1: rounds of a, b, c")
    parser.add_argument("--rounds", type=int, default=1, help="part 2: calls per batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default=None, help="(a), (b) only: the worker picks its own")
    parser.add_argument("--dtype", default=None, help="(a), (b) only: the worker picks its own")
    parser.add_argument("--no-system", action="store_true", help="skip (c): no gateway, worker")
    parser.add_argument("--quick", action="store_true", help="2 steps, batches 1,2, 2 rounds")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave this process on glibc's malloc defaults (the worker always tunes its own: "
        "podium.sd.allocator); default: the same settings here, a like-for-like (a)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    if not args.default_malloc:
        from podium.sd import allocator

        allocator.tune()  # first, before torch starts threads (as the worker does)
    if args.quick:
        args.steps, args.batches, args.images = 2, "1,2", 2
    batches = sorted({int(b) for b in args.batches.split(",")})
    # Same intra-op threads here and in the worker (set before torch starts its pool).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    torch.set_num_threads(args.threads)
    import control_plane as cp

    cpu = cp.CpuWatch()
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    env = environment(args.threads)
    env.append(
        (
            "malloc",
            "worker: podium.sd.allocator settings; this process: "
            + ("glibc defaults" if args.default_malloc else "the same settings"),
        )
    )
    settings = f"{args.model}, {args.size}x{args.size}, {args.steps} steps, PNDM, seeds 0..b-1"
    for name, value in env:
        print(f"{name:>14}: {value}")
    print(f"{'settings':>14}: {settings}", flush=True)
    if args.device or args.dtype:
        print("note: --device/--dtype apply to (a) and (b); the worker uses its defaults")

    res = Results()
    with tempfile.TemporaryDirectory(prefix="podium-sd-bench-") as tmp_name:
        run_all(args, batches, Path(tmp_name), res)
    elapsed = time.monotonic() - started
    env.append(("Load average", f"{load_avg} (1/5/15 min) at the start"))
    env.append(("CPU during the run", cpu.summary()))

    print()
    for name, value in env:
        print(f"{name:<20}{value}")
    print(f"{'Settings':<20}{settings}")
    print(f"{'Model load':<20}" + ", ".join(f"{k} {v:.1f} s" for k, v in res.loads.items()))
    print()
    print(report(res, batches, args.images))
    print(f"\nrun: {elapsed:.0f} s wall")
    if args.json:
        data = {
            "environment": dict(env),
            "settings": settings,
            "load_s": res.loads,
            "per_image_s": {k: v.seconds for k, v in res.seq.items()},
            "system_jobs": [asdict(j) for j in res.split],
            "images_per_s": res.batched,
            "batch_jobs": {b: [asdict(j) for j in js] for b, js in res.batch_jobs.items()},
        }
        args.json.write_text(json.dumps(data, indent=2))
    return 0


def report(res: Results, batches: list[int], images: int) -> str:
    seq, split, batched, batch_jobs = res.seq, res.split, res.batched, res.batch_jobs
    labels = {
        "direct": "(a) direct pipe() call",
        "handler": "(b) SDHandler.handle_batch",
        "system": "(c) gateway + worker, /run -> COMPLETED",
    }
    a = seq["direct"]
    out = [
        f"Part 1: one image at a time, {images} round(s) of a, b, c in turn (seconds per image)",
        f"{'path':<42} {'median':>8} {'mean':>8} {'min':>8} "
        f"{'vs (a) median':>14} {'vs (a) min':>11}",
    ]
    out.append("-" * len(out[-1]))
    for key, label in labels.items():
        s = seq[key]
        if not s.seconds:
            continue
        out.append(
            f"{label:<42} {s.median:>8.3f} {s.mean:>8.3f} {s.low:>8.3f} "
            f"{_pct(s.median, a.median) if key != 'direct' else '':>14} "
            f"{_pct(s.low, a.low) if key != 'direct' else '':>11}"
        )
    if split:
        med = statistics.median
        wall = med([j.wall for j in split])
        execution = med([j.execution for j in split])
        outside = med([j.wall - j.execution for j in split])
        delay = med([j.delay for j in split])
        worker = [j.worker for j in split if j.worker is not None]
        out.append("")
        out.append("(c) split, medians over the rounds:")
        out.append(f"  client wall, /run -> COMPLETED       {wall:8.3f} s")
        out.append(f"  executionTime (take -> job-done)     {execution:8.3f} s")
        out.append(
            f"  wall - executionTime                 {outside:8.3f} s  = {_ms(outside)} "
            f"({outside / a.median:.2%} of (a)): /run, queue wake (delayTime "
            f"{_ms(delay)}), the answer to /status"
        )
        if worker:
            fill = med([j.execution - j.worker for j in split if j.worker is not None])
            b = seq["handler"].median
            out.append(
                f"  worker's own time per job (its log)  {med(worker):8.3f} s  "
                f"(handler + result post; {_pct(med(worker), b)} vs (b) in this process)"
            )
            out.append(
                f"  executionTime - worker's own time    {fill:8.3f} s  = {_ms(fill)} "
                f"({fill / a.median:.2%} of (a)): the take and one ask for company to batch with"
            )
        if res.faults["direct"] and res.faults["system"]:
            out.append(
                f"  minor page faults per image, medians: (a) this process "
                f"{statistics.median(res.faults['direct']):,.0f}, (c) the worker "
                f"{statistics.median(res.faults['system']):,.0f}"
            )
        total = seq["system"].median - a.median
        out.append(
            f"  overhead (c - a) / a = {total / a.median:+.1%} on medians "
            f"({_pct(seq['system'].low, a.low)} on minimums); target <= 3%: "
            + ("met" if total / a.median <= 0.03 else "NOT met")
        )
        if worker:
            path = med([j.wall - j.worker for j in split if j.worker is not None])
            out.append(
                f"  of which the Podium path, wall - worker's own time: {_ms(path)} = "
                f"{path / a.median:.2%} of (a); the rest is the worker's own time "
                "against (a): its handler call and result post"
            )
    out.append("")
    out.append("Part 2: batching, images/s (b concurrent jobs; batch 1 = part 1's medians)")
    head = f"{'batch':>5} {'(a) direct':>11} {'(b) handler':>12} {'(c) system':>11} {'c vs a':>8}"
    out += [head, "-" * len(head)]
    for b in batches:
        if b == 1:
            row = {k: 1 / s.median for k, s in seq.items() if s.seconds}
        else:
            row = batched.get(b, {})
        if not row:
            continue
        system = row.get("system")
        out.append(
            f"{b:>5} {row['direct']:>11.3f} {row['handler']:>12.3f} "
            f"{system if system is not None else float('nan'):>11.3f} "
            f"{_pct(system, row['direct']) if system else '—':>8}"
        )
    for b, jobs in batch_jobs.items():
        spread = max(j.execution for j in jobs) - min(j.execution for j in jobs)
        out.append(
            f"  batch {b} through the system: executionTime {min(j.execution for j in jobs):.2f}"
            f"–{max(j.execution for j in jobs):.2f} s per job (spread {_ms(spread)}: "
            + ("one batch)" if spread < 0.1 * max(j.execution for j in jobs) else "NOT one batch)")
        )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
