"""Which jobs a worker was running when it wrote a line: in-stream job markers. Pure,
but for `write_marker`, the runtime's one-line hook.

Markers travel in the same pipe as the handler's own prints, so they are ordered with
them exactly: no clock, no race.

- Podium's runtime: the process that reads a worker's output (LogShipper) puts a fresh
  random marker in the worker's environment (MARKER_ENV); the runtime then writes
  `<marker> start <job id>` when it takes a job and `<marker> end <job id>` when it is
  done with it (after its result is posted), flushing stdout first. The tagger strips
  these lines: they are never shipped. A handler cannot forge them (it does not know the
  marker unless it reads its environment, and then it only mislabels its own lines).
- An unmodified runpod SDK worker (1.12): its RunPodLogger prints, at its default level
  (DEBUG) and at INFO, `Started.` before it calls the handler and `Finished.` (or
  `Job stopped.` when cancelled) after the result post, each carrying the job id: as a
  JSON line `{"requestId": ID, "message": "Started.", "level": "INFO"}` when
  RUNPOD_ENDPOINT_ID is set (the fleet always sets it), else `INFO   | ID | Started.`.
  These lines are kept (they are the worker's own log) and read as markers; any SDK line
  that carries a requestId is tagged with that id too. At RUNPOD_LOG_LEVEL WARN or ERROR
  the SDK prints no markers: only its own lines that carry a requestId are tagged.

With concurrency > 1 a line is tagged with every job open when it was written: a worker
running two jobs at once writes one stream, and nothing in it says which job a handler's
print belongs to.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys

__all__ = ["MARKER_ENV", "JobTagger", "new_marker", "write_marker"]

MARKER_ENV = "PODIUM_LOG_MARKER"
_SDK_OPEN = frozenset({"Started."})
_SDK_CLOSE = frozenset({"Finished.", "Job stopped."})
_SDK_JSON_START = '{"requestId": '
_SDK_PLAIN = re.compile(r"^[A-Z]+ *\| (?P<id>[^ |]+) \| (?P<message>.*)$")


def new_marker() -> str:
    return "podium-log-marker-" + secrets.token_hex(8)


def write_marker(marker: str | None, event: str, job_id: str) -> None:
    """The runtime's hook: `event` is "start" or "end". Does nothing without a marker
    (nobody reads this worker's output as a log)."""
    if not marker:
        return
    with contextlib.suppress(ValueError, OSError):  # a closed stream: nobody reads it
        sys.stdout.flush()  # what the handler printed so far comes before the marker
        sys.stderr.write(f"{marker} {event} {job_id}\n")
        sys.stderr.flush()


def _sdk_event(text: str) -> tuple[str, str] | None:
    """(job id, message) of a runpod SDK log line that carries a job id."""
    if text.startswith(_SDK_JSON_START):
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        job, message = doc.get("requestId"), doc.get("message")
        if isinstance(job, str) and job and isinstance(message, str):
            return job, message
        return None
    m = _SDK_PLAIN.match(text)
    return (m["id"], m["message"]) if m else None


class JobTagger:
    """Reads a worker's lines in order and says which jobs each belongs to."""

    def __init__(self, marker: str | None = None, sdk: bool = True) -> None:
        self._prefix = f"{marker} " if marker else None
        self._sdk = sdk
        self._open: dict[str, None] = {}  # ordered: the order jobs started in

    @property
    def open_jobs(self) -> tuple[str, ...]:
        return tuple(self._open)

    def feed(self, text: str) -> tuple[str, ...] | None:
        """The job ids to tag this line with; None: the line is a marker (drop it)."""
        if self._prefix is not None and text.startswith(self._prefix):
            event, _, job = text[len(self._prefix) :].partition(" ")
            if event == "start" and job:
                self._open[job] = None
            elif event == "end":
                self._open.pop(job, None)
            return None
        sdk_event = _sdk_event(text) if self._sdk else None
        if sdk_event is None:
            return tuple(self._open)
        job, message = sdk_event
        if message in _SDK_OPEN:
            self._open[job] = None
        tags = tuple(self._open) if job in self._open else (*self._open, job)
        if message in _SDK_CLOSE:
            self._open.pop(job, None)
        return tags
