"""LogBuffer (pure, times given) and LogShipper over a real pipe with a recording sink."""

from __future__ import annotations

import os
import threading
import time

import pytest

from podium.logs.lines import LINE_MAX_BYTES, LogLine
from podium.logs.shipper import LogBuffer, LogShipper, SinkRefused, SinkUnavailable

M = "podium-log-marker-test"


def line(text: str) -> LogLine:
    return LogLine(0.0, text)


# --- LogBuffer ------------------------------------------------------------------------


def test_a_batch_is_due_when_full_or_when_its_oldest_line_waited_flush_s():
    b = LogBuffer(capacity=100, batch_lines=3, flush_s=1.0)
    assert b.due_in(0.0) is None
    b.add(line("a"), now=10.0)
    assert b.due_in(10.0) == 1.0
    assert b.due_in(10.6) == pytest.approx(0.4)
    assert b.due_in(11.0) == 0.0
    b.add(line("b"), now=10.1)
    b.add(line("c"), now=10.2)
    assert b.due_in(10.2) == 0.0  # three lines: a full batch
    assert b.take() == ([line("a"), line("b"), line("c")], 0)
    assert b.due_in(10.3) is None


def test_batches_are_bounded_in_bytes():
    b = LogBuffer(capacity=100, batch_lines=100, batch_bytes=300)
    for i in range(5):
        b.add(line(f"{i}" * 100), now=0.0)
    assert b.due_in(0.0) == 0.0
    first, _ = b.take()
    assert 1 <= len(first) < 5
    rest, _ = b.take()
    assert [ln.text[0] for ln in first + rest] == ["0", "1", "2", "3", "4"][: len(first + rest)]


def test_a_full_buffer_drops_the_oldest_and_the_next_batch_says_how_many():
    b = LogBuffer(capacity=3, batch_lines=10)
    for i in range(5):
        b.add(line(str(i)), now=0.0)
    assert b.take() == ([line("2"), line("3"), line("4")], 2)
    assert b.take() == ([], 0)


def test_a_failed_batch_goes_back_first_in_line():
    b = LogBuffer(capacity=4, batch_lines=2)
    for i in range(3):
        b.add(line(str(i)), now=0.0)
    lines, dropped = b.take()
    b.add(line("3"), now=1.0)
    b.add(line("4"), now=1.0)
    b.give_back(lines, dropped, now=2.0)  # 5 lines for 4 places: "0" goes
    assert b.take() == ([line("1"), line("2")], 1)
    b.lose([line("x")], 0)  # refused for good: counted as dropped
    assert b.take() == ([line("3"), line("4")], 1)


# --- LogShipper over a pipe -----------------------------------------------------------


class Recorder:
    """A sink that records batches; `fail` makes the next sends fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[LogLine], int]] = []
        self.fail: list[Exception] = []
        self.cond = threading.Condition()

    def send(self, lines, dropped) -> None:
        with self.cond:
            if self.fail:
                raise self.fail.pop(0)
            self.batches.append((list(lines), dropped))
            self.cond.notify_all()

    def lines(self) -> list[LogLine]:
        with self.cond:
            return [ln for batch, _ in self.batches for ln in batch]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[LogLine]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([1 for b, _ in self.batches for _ in b]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"wanted {n} lines, got {self.batches}")
                self.cond.wait(left)
        return self.lines()


def shipper_on_pipe(sink, **kw):
    r, w = os.pipe()
    clock_values = iter(range(1000, 2000))
    s = LogShipper(os.fdopen(r, "rb"), sink, clock=lambda: float(next(clock_values)), **kw)
    return s.start(), w


def test_lines_are_tagged_stripped_of_markers_and_shipped_in_order():
    sink = Recorder()
    s, w = shipper_on_pipe(sink, marker=M)
    os.write(w, f"one\n{M} start j1\ntwo\r\nthr".encode())
    os.write(w, f"ee\n{M} end j1\nbad \xff\xfe utf8\n".encode("latin-1"))
    os.write(w, b"no newline at the end")
    os.close(w)
    assert s.wait_eof(10)
    s.finish()
    assert s.join(10)
    got = [(ln.text, ln.jobs) for ln in sink.lines()]
    assert got == [
        ("one", ()),
        ("two", ("j1",)),
        ("three", ("j1",)),
        ("bad \ufffd\ufffd utf8", ()),
        ("no newline at the end", ()),
    ]
    assert [ln.at for ln in sink.lines()] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    assert s.shipped == 5 and s.lost == 0


def test_a_very_long_line_is_cut_and_the_next_line_is_intact():
    sink = Recorder()
    s, w = shipper_on_pipe(sink)
    os.write(w, b"x" * (LINE_MAX_BYTES * 5) + b"\nnext\n")
    os.close(w)
    s.wait_eof(10)
    s.finish()
    s.join(10)
    long, nxt = sink.lines()
    assert len(long.text.encode()) <= LINE_MAX_BYTES and long.text.endswith("…")
    assert nxt.text == "next"


def test_while_the_sink_fails_lines_wait_and_the_oldest_are_dropped_and_counted():
    sink = Recorder()
    sink.fail = [SinkUnavailable("down")] * 3
    s, w = shipper_on_pipe(sink, buffer=LogBuffer(capacity=4, batch_lines=100, flush_s=0.0))
    os.write(w, b"".join(f"{i}\n".encode() for i in range(10)))
    os.close(w)
    s.wait_eof(10)
    s.finish()
    assert s.join(30)
    shipped = [(ln.text) for ln in sink.lines()]
    dropped = sum(d for _, d in sink.batches)
    assert shipped[-1] == "9"
    assert len(shipped) + dropped == 10
    assert s.lost == dropped and s.shipped == len(shipped)


def test_a_refused_batch_is_counted_in_the_next_one():
    sink = Recorder()
    sink.fail = [SinkRefused("403")]
    s, w = shipper_on_pipe(sink, buffer=LogBuffer(batch_lines=1, flush_s=0.0))
    os.write(w, b"lost\n")
    sink_wait = time.monotonic() + 10
    while sink.fail and time.monotonic() < sink_wait:  # the refusal happened
        time.sleep(0.01)
    os.write(w, b"kept\n")
    os.close(w)
    s.wait_eof(10)
    s.finish()
    s.join(10)
    assert sink.lines() == [LogLine(1001.0, "kept")]
    assert sum(d for _, d in sink.batches) == 1 and s.lost == 1


def test_notes_echo_and_recent_lines():
    sink = Recorder()
    echo_r, echo_w = os.pipe()
    s, w = shipper_on_pipe(sink, marker=M, echo=echo_w)
    s.note("--- podium: started ---")
    os.write(w, f"hello\n{M} start j\n".encode())
    os.close(w)
    s.wait_eof(10)
    s.finish()
    s.join(10)
    os.close(echo_w)
    with os.fdopen(echo_r, "rb") as fh:
        assert fh.read() == b"hello\n"  # markers are not echoed
    assert [ln.text for ln in sink.lines()] == ["--- podium: started ---", "hello"]
    assert s.recent() == ["--- podium: started ---", "hello"]


def test_a_shipper_without_a_stream_ships_its_notes():
    sink = Recorder()
    s = LogShipper(None, sink).start()
    s.note("cannot start: no such file")
    s.finish()
    assert s.join(10)
    assert [ln.text for ln in sink.lines()] == ["cannot start: no such file"]


def test_the_shipper_gives_up_after_finish_when_the_gateway_stays_away():
    sink = Recorder()
    sink.fail = [SinkUnavailable("down")] * 1000
    s = LogShipper(None, sink).start()
    s.note("never delivered")
    s.finish(give_up_s=0.0)
    assert s.join(10)
    assert sink.batches == [] and s.lost == 1
