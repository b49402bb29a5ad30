"""LogShipper: a worker's output (one pipe: stdout and stderr) -> tagged lines -> batches
-> a sink (HttpLogSink: the gateway's worker-logs route). The one path for every worker:
the supervisor's children, Ray actors, and `podium worker --ship-logs`.

    shipper = LogShipper(proc.stdout, HttpLogSink(gateway_url, endpoint_id, worker_id,
                         token), marker=marker)   # marker: in the child's MARKER_ENV
    shipper.start()
    ...                                           # the child writes, exits: EOF
    shipper.finish(); shipper.join(10)            # flush what is left

Two daemon threads: the reader (blocking reads of the pipe; lines at most
LINE_MAX_BYTES, invalid UTF-8 replaced, job markers read and stripped by JobTagger) and
the sender (a batch when BATCH lines or bytes are waiting, or `flush_s` after the oldest
line; one batch in flight at a time). While the sink fails the lines wait in a bounded
buffer (`buffer_lines`): the oldest are dropped and counted, and the next batch that gets
through says how many (the gateway stores a line saying so). A batch the gateway refuses
for good (SinkRefused: a bad token, a deleted endpoint) is dropped and counted the same way.
Nothing here ever blocks the worker: a full pipe is read on, whatever the gateway does.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from podium import codec
from podium.endpoints.worker_env import logs_destination, worker_logs_url
from podium.errors import SinkRefused, SinkUnavailable
from podium.logs.lines import (
    BATCH_MAX_BYTES,
    BATCH_MAX_LINES,
    LINE_MAX_BYTES,
    LogLine,
    batch_body,
    cut_line,
)
from podium.logs.markers import JobTagger

__all__ = [
    "HttpLogSink",
    "LogBuffer",
    "LogShipper",
    "LogSink",
    "SinkRefused",
    "SinkUnavailable",
    "ship_own_output",
    "worker_sink",
]

log = logging.getLogger("podium.logs")

BUFFER_LINES = 10_000  # lines waiting while the gateway cannot be reached
FLUSH_S = 0.2  # a line waits at most this long for others to share its batch
BATCH_BYTES = BATCH_MAX_BYTES // 2  # what the sender packs (JSON may grow on the wire)
RETRY_MIN_S, RETRY_MAX_S = 0.5, 5.0
RECENT_LINES = 50
FINISH_WAIT_S = 40.0  # how long a run's lines wait behind its previous run's (which give up at 30)
_READ_MAX = LINE_MAX_BYTES * 2  # bytes one readline may take (the rest of a line is skipped)
_LINE_OVERHEAD = 48  # bytes of JSON around a line's text and jobs


class LogSink(Protocol):
    def send(self, lines: Sequence[LogLine], dropped: int) -> None:
        """Deliver one batch, or raise SinkUnavailable / SinkRefused."""
        ...


class HttpLogSink:
    """POSTs batches to the gateway's worker-logs route with the endpoint's worker token
    (the one in the worker's RUNPOD_AI_API_KEY). Blocking; used from the sender thread."""

    def __init__(
        self,
        gateway_url: str,
        endpoint_id: str,
        worker_id: str,
        token: str | None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self._open(worker_logs_url(gateway_url, endpoint_id, worker_id), token, timeout_s)

    @classmethod
    def at(cls, url: str, token: str | None, *, timeout_s: float = 10.0) -> HttpLogSink:
        """A sink for a worker-logs URL as it is (podium.worker.config's `logs_url`)."""
        sink = cls.__new__(cls)
        sink._open(url, token, timeout_s)
        return sink

    def _open(self, url: str, token: str | None, timeout_s: float) -> None:
        import httpx  # here: a sink is built only where logs are shipped

        self.url = url
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        self._http = httpx.Client(headers=headers, timeout=timeout_s)
        self._errors: tuple[type[Exception], ...] = (httpx.HTTPError,)

    def send(self, lines: Sequence[LogLine], dropped: int) -> None:
        try:
            r = self._http.post(self.url, content=codec.dumps(batch_body(lines, dropped)))
        except self._errors as exc:
            raise SinkUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code < 300:
            return
        what = f"{self.url} answered {r.status_code}: {r.text[:200]}"
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise SinkUnavailable(what)
        raise SinkRefused(what)

    def close(self) -> None:
        self._http.close()


def worker_sink(env: Mapping[str, str]) -> HttpLogSink | None:
    """The sink of a worker started with these RUNPOD_* variables (PROTOCOL.md §2): the
    worker-logs route of the gateway its job-take URL names, with its worker token. None
    when the URL is not a Podium gateway's. What a backend that starts workers (local
    processes, a Ray slot actor) gives the worker's LogShipper."""
    found = logs_destination(env)
    return None if found is None else HttpLogSink.at(*found)


def _size(line: LogLine) -> int:
    return len(json.dumps(line.text)) + sum(len(j) + 3 for j in line.jobs) + _LINE_OVERHEAD


@dataclass
class LogBuffer:
    """The lines waiting to be shipped and the count of those dropped. Pure: the caller
    gives the time (`now`, seconds on any monotonic clock)."""

    capacity: int = BUFFER_LINES
    batch_lines: int = BATCH_MAX_LINES
    batch_bytes: int = BATCH_BYTES
    flush_s: float = FLUSH_S
    dropped: int = 0  # dropped since the last batch that got through
    _lines: collections.deque[tuple[float, LogLine, int]] = field(default_factory=collections.deque)
    _bytes: int = 0

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: LogLine, now: float) -> None:
        size = _size(line)
        self._lines.append((now, line, size))
        self._bytes += size
        self._trim()

    def _trim(self) -> None:
        while len(self._lines) > self.capacity:
            _, _, size = self._lines.popleft()
            self._bytes -= size
            self.dropped += 1

    def due_in(self, now: float) -> float | None:
        """Seconds until a batch is due (0: now); None: nothing to send."""
        if not self._lines:
            return 0.0 if self.dropped else None
        if len(self._lines) >= self.batch_lines or self._bytes >= self.batch_bytes:
            return 0.0
        return max(0.0, self._lines[0][0] + self.flush_s - now)

    def take(self) -> tuple[list[LogLine], int]:
        """The next batch (oldest lines first) and the drop count it reports."""
        lines: list[LogLine] = []
        size = 0
        while self._lines and len(lines) < self.batch_lines:
            _, line, n = self._lines[0]
            if lines and size + n > self.batch_bytes:
                break
            self._lines.popleft()
            self._bytes -= n
            size += n
            lines.append(line)
        dropped, self.dropped = self.dropped, 0
        return lines, dropped

    def give_back(self, lines: Sequence[LogLine], dropped: int, now: float) -> None:
        """A batch that did not get through: first in line again (oldest dropped first
        if that overflows the buffer)."""
        for line in reversed(lines):
            size = _size(line)
            self._lines.appendleft((now, line, size))
            self._bytes += size
        self.dropped += dropped
        self._trim()

    def lose(self, lines: Sequence[LogLine], dropped: int) -> None:
        """A batch refused for good: its lines count as dropped."""
        self.dropped += dropped + len(lines)


class LogShipper:
    def __init__(
        self,
        stream: IO[bytes] | None,
        sink: LogSink,
        *,
        marker: str | None = None,
        echo: int | None = None,
        clock: Callable[[], float] = time.time,
        buffer: LogBuffer | None = None,
        name: str = "worker",
        after: LogShipper | None = None,
    ) -> None:
        """`stream`: the pipe to read (binary; None: only `note` lines); `marker`: the
        value given to the child in MARKER_ENV; `echo`: a file descriptor that also gets
        every line (the terminal of `podium worker --ship-logs`); `clock`: capture times;
        `after`: the shipper of the same worker's previous run, whose lines this one
        sends nothing before (its exit line stays ahead of this run's start line)."""
        self.stream = stream
        self.sink = sink
        self.echo = echo
        self.clock = clock
        self.tagger = JobTagger(marker)
        self.buffer = buffer or LogBuffer()
        self.name = name
        self.shipped = 0  # lines that got through
        self.lost = 0  # lines dropped and reported (buffer full, refused, given up)
        self._recent: collections.deque[str] = collections.deque(maxlen=RECENT_LINES)
        self._cond = threading.Condition()
        self._eof = threading.Event()
        self._finishing = False
        self._give_up_at: float | None = None
        self._reader: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._after = after

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> LogShipper:
        if self.stream is not None:
            self._reader = threading.Thread(
                target=self._read, name=f"logs-read-{self.name}", daemon=True
            )
            self._reader.start()
        else:
            self._eof.set()
        self._sender = threading.Thread(
            target=self._send_loop, name=f"logs-send-{self.name}", daemon=True
        )
        self._sender.start()
        return self

    def wait_eof(self, timeout: float) -> bool:
        """Wait until the stream has ended (the child and its group exited)."""
        return self._eof.wait(timeout)

    def finish(self, give_up_s: float = 30.0) -> None:
        """No more lines once the stream ends: the sender ships what is left and stops,
        dropping it after `give_up_s` if the gateway cannot be reached. Never blocks."""
        with self._cond:
            self._finishing = True
            self._give_up_at = time.monotonic() + give_up_s
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for the threads to end (after finish); True when they did."""
        deadline = time.monotonic() + timeout
        for t in (self._reader, self._sender):
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        return not any(t is not None and t.is_alive() for t in (self._reader, self._sender))

    # --- lines --------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A line of Podium's own (the supervisor's start and exit lines), in order with
        the worker's output; tagged with no job."""
        self._add(LogLine(self.clock(), cut_line(text)))

    def recent(self) -> list[str]:
        """The last lines read (at most RECENT_LINES), for a reason to show at once."""
        with self._cond:
            return list(self._recent)

    def _add(self, line: LogLine) -> None:
        with self._cond:
            self._recent.append(line.text)
            self.buffer.add(line, time.monotonic())
            self._cond.notify_all()

    def _read(self) -> None:
        stream = self.stream
        if stream is None:
            return
        skipping = False  # inside a line longer than _READ_MAX: its rest is not kept
        try:
            while raw := stream.readline(_READ_MAX):
                whole = raw.endswith(b"\n")
                if skipping:
                    skipping = not whole
                    continue
                skipping = not whole and len(raw) >= _READ_MAX
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                tags = self.tagger.feed(text)
                if tags is None:
                    continue  # a job marker: not the worker's output
                if self.echo is not None:
                    self._echo(self.echo, raw if whole else raw + b"\n")
                self._add(LogLine(self.clock(), cut_line(text), tags))
        except (OSError, ValueError) as exc:  # the pipe was closed under us
            log.debug("log reader of %s stopped: %s", self.name, exc)
        finally:
            with contextlib.suppress(OSError):
                stream.close()  # its one reader: the descriptor goes back at the end
            self._eof.set()
            with self._cond:
                self._cond.notify_all()

    @staticmethod
    def _echo(fd: int, raw: bytes) -> None:
        with contextlib.suppress(OSError):
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]

    # --- sending ------------------------------------------------------------------------

    def _next_batch(self) -> tuple[list[LogLine], int] | None:
        """Wait for a batch; None when there is nothing more to ship."""
        with self._cond:
            while True:
                done = self._finishing and self._eof.is_set()
                due = self.buffer.due_in(time.monotonic())
                if due is not None and (due <= 0 or done):
                    return self.buffer.take()
                if done:
                    return None
                self._cond.wait(timeout=due if due is not None else 1.0)

    def sending(self) -> bool:
        """Whether its sender still runs (lines are left to ship)."""
        return self._sender is not None and self._sender.is_alive()

    def _send_loop(self) -> None:
        try:
            if self._after is not None:  # the previous run's lines go first
                self._after.join(FINISH_WAIT_S)
                self._after = None
            self._send_all()
        finally:
            close = getattr(self.sink, "close", None)  # HttpLogSink's connections
            if callable(close):
                close()

    def _send_all(self) -> None:
        retry = RETRY_MIN_S
        while (batch := self._next_batch()) is not None:
            lines, dropped = batch
            try:
                self.sink.send(lines, dropped)
            except SinkRefused as exc:
                log.warning("worker log of %s: a batch was refused: %s", self.name, exc.message)
                with self._cond:
                    self.buffer.lose(lines, dropped)
                continue
            except Exception as exc:  # SinkUnavailable, or a sink's own failure
                with self._cond:
                    if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                        self.lost += dropped + len(lines) + len(self.buffer)
                        log.warning(
                            "worker log of %s: the gateway is unreachable (%s); %d line(s) lost",
                            self.name,
                            exc,
                            dropped + len(lines) + len(self.buffer),
                        )
                        return
                    self.buffer.give_back(lines, dropped, time.monotonic())
                    pause = retry
                    if self._give_up_at is not None:
                        pause = min(pause, max(0.0, self._give_up_at - time.monotonic()))
                time.sleep(pause)  # the sender's own thread: nothing else waits on it
                retry = min(RETRY_MAX_S, retry * 2)
                continue
            retry = RETRY_MIN_S
            self.shipped += len(lines)
            self.lost += dropped


def ship_own_output(sink: LogSink, marker: str | None, name: str = "worker") -> Callable[[], None]:
    """This process's own stdout and stderr (file descriptors 1 and 2, so child processes
    and C libraries too) go through a pipe to a LogShipper, which still echoes every line
    to the original stdout. `podium worker --ship-logs` uses it; call the returned
    function at exit: it puts the descriptors back and ships what is left (at most a few
    seconds when the gateway cannot be reached)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):
            stream.flush()
    saved = (os.dup(1), os.dup(2))
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    for stream in (sys.stdout, sys.stderr):  # whole lines reach the pipe at once
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    shipper = LogShipper(
        os.fdopen(read_fd, "rb"), sink, marker=marker, echo=saved[0], name=name
    ).start()

    def stop() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
        os.dup2(saved[0], 1)  # the pipe's last writers go: the reader sees its end
        os.dup2(saved[1], 2)
        shipper.wait_eof(2.0)
        shipper.finish(give_up_s=5.0)
        shipper.join(10.0)
        os.close(saved[0])
        os.close(saved[1])

    return stop
