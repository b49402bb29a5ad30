"""The RUNPOD_* variables and worker URLs (endpoints/worker_env.py). Pure."""

from __future__ import annotations

from podium.endpoints.worker_env import (
    env_errors,
    logs_destination,
    logs_url_of,
    worker_env,
    worker_logs_url,
)


def test_a_workers_log_destination_comes_from_its_job_take_url_and_token():
    env = worker_env("http://gw:8000/", "ep1", "w/1", "cpu", "pw_token", 10_000)
    assert logs_destination(env) == ("http://gw:8000/v2/ep1/worker-logs/w%2F1", "pw_token")
    assert worker_logs_url("http://gw:8000", "ep1", "w/1") == logs_destination(env)[0]


def test_no_destination_without_a_podium_take_url_or_a_worker_id():
    assert (
        logs_destination({"RUNPOD_WEBHOOK_GET_JOB": "https://api.runpod.ai/v2/x/job-take/$ID"})
        is None
    )
    env = worker_env("http://gw", "ep1", "w1", "cpu", "t", 1000)
    assert logs_destination({**env, "RUNPOD_WEBHOOK_GET_JOB": "https://other/get?x=$ID"}) is None
    assert logs_url_of("https://other/get") is None


def test_env_errors_name_bad_names_protected_variables_and_nul():
    errors = env_errors({"1X": "a", "RUNPOD_AI_API_KEY": "b", "OK": "c\x00"})
    assert errors == [
        "`env` has invalid variable names: 1X",
        "`env.OK` may not contain a NUL character (\\u0000)",
        "`env` may not set RUNPOD_AI_API_KEY: the fleet sets them per worker",
    ]
    assert env_errors({"A_1": "fine"}) == []
