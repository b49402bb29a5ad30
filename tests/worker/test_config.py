"""WorkerConfig: env parsing, URL templating and substitution."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from podium.worker.config import ConfigError, WorkerConfig, with_query

GW = "http://gw:8000/v2/ep1"
RUNPOD_ENV = {
    "RUNPOD_WEBHOOK_GET_JOB": f"{GW}/job-take/$ID?gpu=A100",
    "RUNPOD_WEBHOOK_POST_OUTPUT": f"{GW}/job-done/$RUNPOD_POD_ID/$ID?gpu=A100",
    "RUNPOD_WEBHOOK_POST_STREAM": f"{GW}/job-stream/$RUNPOD_POD_ID/$ID?gpu=A100",
    "RUNPOD_WEBHOOK_PING": f"{GW}/ping/$RUNPOD_POD_ID?gpu=A100",
    "RUNPOD_AI_API_KEY": "tok",
    "RUNPOD_POD_ID": "w1",
    "RUNPOD_ENDPOINT_ID": "ep1",
    "RUNPOD_PING_INTERVAL": "2500",
}


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_runpod_env_substitutes_worker_and_job_ids() -> None:
    c = WorkerConfig.from_env(env=RUNPOD_ENV)
    assert c.worker_id == "w1" and c.token == "tok" and c.endpoint_id == "ep1"
    assert c.ping_interval_s == 2.5
    assert c.take_url == f"{GW}/job-take/w1?gpu=A100"
    assert c.ping_url == f"{GW}/ping/w1?gpu=A100"
    assert c.done_request_url("j-1", False) == f"{GW}/job-done/w1/j-1?gpu=A100&isStream=false"
    assert c.done_request_url("j-1", True).endswith("&isStream=true")
    assert c.stream_request_url("j-1") == f"{GW}/job-stream/w1/j-1?gpu=A100&isStream=false"


def test_take_urls_single_batch_and_hold() -> None:
    c = WorkerConfig.from_env(env=RUNPOD_ENV)
    assert c.take_request_url(1, False, None) == f"{GW}/job-take/w1?gpu=A100&job_in_progress=0"
    batch = c.take_request_url(4, True, 1.5)
    assert batch.startswith(f"{GW}/job-take-batch/w1?")
    assert query(batch) == {
        "gpu": ["A100"],
        "batch_size": ["4"],
        "job_in_progress": ["1"],
        "hold": ["1.500"],
    }
    assert c.stop_url == f"{GW}/job-stop/w1?gpu=A100"


def test_stop_poll_uses_the_configured_hold() -> None:
    c = WorkerConfig.from_env(env={**RUNPOD_ENV, "PODIUM_WORKER_TAKE_HOLD_S": "2"})
    assert c.stop_request_url() == f"{GW}/job-stop/w1?gpu=A100&hold=2.000"


def test_job_ids_are_quoted_in_urls() -> None:
    c = WorkerConfig.from_env(env=RUNPOD_ENV)
    assert "/job-done/w1/a%2Fb?" in c.done_request_url("a/b", False)


def test_worker_id_defaults_to_a_random_uuid() -> None:
    env = {k: v for k, v in RUNPOD_ENV.items() if k != "RUNPOD_POD_ID"}
    a, b = WorkerConfig.from_env(env=env), WorkerConfig.from_env(env=env)
    assert len(a.worker_id) == 36 and a.worker_id != b.worker_id
    assert f"/job-take/{a.worker_id}?" in a.take_url


def test_gateway_overrides_derive_every_url() -> None:
    c = WorkerConfig.from_env(
        env={"PODIUM_WORKER_GPU": "H100"},
        gateway="http://gw:9/",
        endpoint_id="ep2",
        token="t2",
        worker_id="w9",
        concurrency=3,
        batch_size=2,
    )
    assert c.take_url == "http://gw:9/v2/ep2/job-take/w9?gpu=H100"
    assert c.done_url == "http://gw:9/v2/ep2/job-done/w9/$ID?gpu=H100"
    assert c.stream_url == "http://gw:9/v2/ep2/job-stream/w9/$ID?gpu=H100"
    assert c.ping_url == "http://gw:9/v2/ep2/ping/w9?gpu=H100"
    assert (c.token, c.concurrency, c.batch_size) == ("t2", 3, 2)


def test_overrides_of_none_keep_the_environment() -> None:
    env = {**RUNPOD_ENV, "PODIUM_WORKER_CONCURRENCY": "4", "PODIUM_WORKER_REFRESH": "true"}
    c = WorkerConfig.from_env(env=env, gateway=None, token=None, concurrency=None)
    assert c.concurrency == 4 and c.refresh_worker and c.token == "tok"
    assert c.take_url.startswith(GW)


def test_only_the_take_url_derives_the_other_podium_urls() -> None:
    c = WorkerConfig.from_env(env={"RUNPOD_WEBHOOK_GET_JOB": f"{GW}/job-take/$ID?gpu=x"})
    wid = c.worker_id
    assert c.done_url == f"{GW}/job-done/{wid}/$ID?gpu=x"
    assert c.ping_url == f"{GW}/ping/{wid}?gpu=x"


def test_with_query_handles_urls_with_and_without_a_query() -> None:
    assert with_query("http://h/p", {"a": 1}) == "http://h/p?a=1"
    assert with_query("http://h/p?x=1", {"a": "b,c", "n": None}) == "http://h/p?x=1&a=b,c"
    assert with_query("http://h/p?", {"a": 1}) == "http://h/p?a=1"


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({}, {}, "RUNPOD_WEBHOOK_GET_JOB"),
        ({"RUNPOD_WEBHOOK_GET_JOB": "http://other/take?x"}, {}, "RUNPOD_WEBHOOK_POST_OUTPUT"),
        ({}, {"gateway": "http://gw"}, "RUNPOD_ENDPOINT_ID"),
        ({**RUNPOD_ENV, "RUNPOD_PING_INTERVAL": "soon"}, {}, "RUNPOD_PING_INTERVAL"),
        ({**RUNPOD_ENV, "PODIUM_WORKER_REFRESH": "maybe"}, {}, "PODIUM_WORKER_REFRESH"),
        ({**RUNPOD_ENV, "PODIUM_WORKER_LOG_LEVEL": "loud"}, {}, "log level"),
        (RUNPOD_ENV, {"concurrency": 0}, "concurrency"),
        (RUNPOD_ENV, {"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_fail_loudly(
    env: dict[str, str], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerConfig.from_env(env=env, **overrides)


def test_log_level_falls_back_to_the_sdk_variable() -> None:
    assert WorkerConfig.from_env(env={**RUNPOD_ENV, "RUNPOD_DEBUG_LEVEL": "WARN"}).log_level == (
        "WARNING"
    )


def test_a_log_shipper_s_marker_and_the_worker_logs_url() -> None:
    config = WorkerConfig.from_env(
        {"PODIUM_LOG_MARKER": "podium-log-marker-x"},
        gateway="http://gw:8000/",
        endpoint_id="ep 1",
        worker_id="w/1",
    )
    assert config.log_marker == "podium-log-marker-x"
    assert config.logs_url == "http://gw:8000/v2/ep%201/worker-logs/w%2F1"
    assert WorkerConfig.from_env({}, gateway="http://gw", endpoint_id="e").log_marker is None
    odd = WorkerConfig.from_env(
        {**RUNPOD_ENV, "RUNPOD_WEBHOOK_GET_JOB": "http://elsewhere/next?worker=$ID"}
    )
    assert odd.logs_url is None
