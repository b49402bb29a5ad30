"""JobTagger: which jobs each line belongs to, from in-stream markers. Pure."""

from __future__ import annotations

import json

from podium.logs.markers import JobTagger, new_marker, write_marker

M = "podium-log-marker-test"


def feed(tagger: JobTagger, *texts: str) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for t in texts:
        tags = tagger.feed(t)
        if tags is not None:
            out.append((t, tags))
    return out


def test_podium_markers_tag_lines_between_them_and_are_stripped():
    t = JobTagger(M)
    assert feed(
        t,
        "booting",
        f"{M} start j1",
        "in j1",
        f"{M} end j1",
        "idle",
        f"{M} start j2",
        "in j2",
        f"{M} end j2",
    ) == [("booting", ()), ("in j1", ("j1",)), ("idle", ()), ("in j2", ("j2",))]


def test_concurrent_jobs_tag_a_line_with_every_open_job():
    t = JobTagger(M)
    out = feed(t, f"{M} start a", f"{M} start b", "both", f"{M} end a", "only b")
    assert out == [("both", ("a", "b")), ("only b", ("b",))]


def test_markers_of_another_marker_are_ordinary_lines():
    t = JobTagger(M)
    other = "podium-log-marker-other start evil"
    assert feed(t, other, "next") == [(other, ()), ("next", ())]
    assert JobTagger(None).feed(f"{M} start x") == ()  # no marker: nothing is one


def _sdk(job, message, level="INFO"):
    return json.dumps({"requestId": job, "message": message, "level": level})


def test_runpod_sdk_lines_open_and_close_jobs_and_are_kept():
    t = JobTagger(M)
    lines = [
        _sdk(None, "Jobs in queue: 1"),
        _sdk("j1", "Started."),
        "handler print",
        _sdk("j1", "Handler output: ...", "DEBUG"),
        _sdk("j1", "Finished."),
        _sdk("j1", "Finished Job", "DEBUG"),
        "after",
    ]
    assert feed(t, *lines) == [
        (lines[0], ()),
        (lines[1], ("j1",)),
        ("handler print", ("j1",)),
        (lines[3], ("j1",)),
        (lines[4], ("j1",)),
        (lines[5], ("j1",)),  # carries its own requestId
        ("after", ()),
    ]


def test_runpod_sdk_plain_format_and_cancelled_jobs():
    t = JobTagger()
    out = feed(t, "INFO   | j9 | Started.", "work", "INFO   | j9 | Job stopped.", "x")
    assert [tags for _, tags in out] == [("j9",), ("j9",), ("j9",), ()]
    assert feed(JobTagger(sdk=False), "INFO   | j9 | Started.", "y") == [
        ("INFO   | j9 | Started.", ()),
        ("y", ()),
    ]


def test_write_marker_flushes_stdout_first_and_writes_one_line(capsys):
    marker = new_marker()
    assert marker.startswith("podium-log-marker-") and marker != new_marker()
    write_marker(None, "start", "j")
    print("before", end="")
    write_marker(marker, "start", "j1")
    captured = capsys.readouterr()
    assert captured.out == "before"
    assert captured.err == f"{marker} start j1\n"
