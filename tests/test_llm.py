"""The LLM client against the loopback server, through the real openai client."""

import logging
import time

import numpy as np
import pytest
from loopback_llm import LoopbackLLM, full_module, http_error, reply, search_replace

from evolve.config import ExperimentConfig, LLMSettings, ModelSpec
from evolve.llm.client import Budget, LLMCall, LLMClient, call_cost
from evolve.llm.reply import apply_reply, parse_reply

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "improve LR"}]
MODEL = ModelSpec(name="loop-model", input_usd_per_million=2.0, output_usd_per_million=8.0, temperature=0.3, max_tokens=77)


def settings(url: str, **kwargs) -> LLMSettings:
    return LLMSettings(base_url=url, models=kwargs.pop("models", [MODEL]), **{"timeout_seconds": 5, "max_retries": 2, **kwargs})


def test_a_reply_is_recorded_with_tokens_and_cost():
    with LoopbackLLM(reply(search_replace("LR = 0.24", "LR = 0.3"), prompt_tokens=1000, completion_tokens=500)) as server:
        with LLMClient(settings(server.url)) as client:
            call = client.complete(MESSAGES)
    assert call.ok and call.model == "loop-model" and call.endpoint == server.url
    assert (call.tokens_in, call.tokens_out) == (1000, 500)
    assert call.cost_usd == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert call.attempts == 1 and call.http_statuses == [200] and call.latency_seconds > 0
    assert call.messages == MESSAGES and call.finish_reason == "stop"
    body = server.requests[0].body
    assert body["model"] == "loop-model" and body["messages"] == MESSAGES
    assert body["temperature"] == 0.3 and body["max_tokens"] == 77
    assert apply_reply("LR = 0.24\n", parse_reply(call.response)) == "LR = 0.3\n"
    LLMCall.model_validate_json(call.model_dump_json())  # storable


def test_429_and_500_are_retried_and_recorded():
    with LoopbackLLM(http_error(429), http_error(500), reply(full_module("X = 1"))) as server:
        with LLMClient(settings(server.url)) as client:
            call = client.complete(MESSAGES)
    assert call.ok and parse_reply(call.response).source == "X = 1\n"
    assert call.attempts == 3 and call.http_statuses == [429, 500, 200]
    assert [r.answered_status for r in server.requests] == [429, 500, 200]
    assert [r.headers.get("x-stainless-retry-count") for r in server.requests] == ["0", "1", "2"]


def test_retries_exhausted_give_an_error_record(caplog):
    with LoopbackLLM(http_error(503), http_error(503)) as server:
        with LLMClient(settings(server.url, max_retries=1)) as client, caplog.at_level(logging.WARNING, "evolve.llm.client"):
            call = client.complete(MESSAGES)
    assert not call.ok and call.response is None and call.cost_usd == 0
    assert call.error.startswith("HTTP 503 (InternalServerError)") and call.attempts == 2
    assert "failed after 2 attempts" in caplog.text


def test_a_reply_slower_than_the_timeout_is_an_error_record():
    with LoopbackLLM(reply("late", delay=3.0)) as server:
        with LLMClient(settings(server.url, timeout_seconds=0.3, max_retries=0)) as client:
            start = time.perf_counter()
            call = client.complete(MESSAGES)
    assert time.perf_counter() - start < 2.5
    assert call.error.startswith("timeout") and call.attempts == 1 and call.http_statuses == []


def test_connection_refused_is_an_error_record():
    with LoopbackLLM() as server:
        url = server.url
    with LLMClient(settings(url, max_retries=0)) as client:
        call = client.complete(MESSAGES)
    assert call.error.startswith("connection error")


def test_empty_reply_and_missing_usage():
    with LoopbackLLM(reply(""), reply("text", usage=False)) as server:
        with LLMClient(settings(server.url)) as client:
            empty, unpriced = client.complete(MESSAGES), client.complete(MESSAGES)
    assert empty.error.startswith("the model returned no text") and empty.response is None
    assert unpriced.ok and unpriced.tokens_in is None and unpriced.cost_usd == 0


def test_models_are_drawn_by_weight():
    models = [ModelSpec(name="a", weight=3), ModelSpec(name="b", weight=1)]
    client = LLMClient(settings("http://127.0.0.1:9/v1", models=models), rng=np.random.default_rng(0))
    names = [client.choose_model().name for _ in range(4000)]
    assert 0.72 < names.count("a") / len(names) < 0.78
    with pytest.raises(ValueError, match="not configured"):
        client.model_named("c")
    client.close()
    with pytest.raises(ValueError, match="no LLM models"):
        LLMClient(LLMSettings())


def test_named_model_and_key_sent():
    with LoopbackLLM(reply("ok")) as server:
        s = LLMSettings(base_url=server.url, api_key="sk-loop-secret", models=[MODEL, ModelSpec(name="other")])
        with LLMClient(s) as client:
            assert client.complete(MESSAGES, model="other").model == "other"
    assert server.requests[0].headers["authorization"] == "Bearer sk-loop-secret"


def test_budget():
    budget = Budget.from_config(ExperimentConfig(budget_usd=0.01, budget_gpu_hours=1.0))
    assert not budget.exhausted and budget.exhausted_reason() is None
    call = LLMCall(model="m", endpoint="e", messages=[], latency_seconds=1, cost_usd=0.006,
                   started_at="2025-01-01T00:00:00Z")
    budget.add_call(call)
    assert not budget.exhausted
    budget.add_call(call)
    assert budget.exhausted and "LLM budget exhausted: $0.01 of $0.01" in budget.exhausted_reason()
    gpu = Budget(gpu_hours_limit=1.0)
    gpu.add_gpu_seconds(1800)
    assert not gpu.exhausted
    gpu.add_gpu_seconds(1800)
    assert "GPU budget exhausted" in gpu.exhausted_reason()
    assert not Budget().exhausted  # no limits
    with pytest.raises(ValueError):
        gpu.add_gpu_seconds(-1)
    assert call_cost(MODEL, None, 10) == pytest.approx(8e-5)


def test_scripted_replies_through_parse_and_static_check(baseline_set):
    """The kinds of reply the loop meets, end to end from the HTTP server to a checked source."""
    from evaluator.static_check import check_source
    from evolve.llm.reply import ReplyError

    parent = baseline_set.sources["hyperparams"]
    malicious = parent.replace('"""Every scalar', 'import os\n"""Every scalar', 1)
    with LoopbackLLM(
        reply(search_replace('    "muon_lr": 0.24,', '    "muon_lr": 0.27,')),
        reply(full_module(parent.replace("8.0", "7.5"))),
        reply("I think the learning rate is too low."),
        reply(full_module(malicious)),
    ) as server:
        with LLMClient(settings(server.url)) as client:
            calls = [client.complete(MESSAGES) for _ in range(4)]
        assert server.pending == 0
    diff_child = apply_reply(parent, parse_reply(calls[0].response))
    assert '"muon_lr": 0.27' in diff_child and check_source("hyperparams", diff_child) == []
    full_child = apply_reply(parent, parse_reply(calls[1].response))
    assert '"epochs": 7.5' in full_child and check_source("hyperparams", full_child) == []
    with pytest.raises(ReplyError, match="neither SEARCH/REPLACE blocks nor"):
        parse_reply(calls[2].response)
    rejected = check_source("hyperparams", apply_reply(parent, parse_reply(calls[3].response)))
    assert [v.rule for v in rejected] == ["import"]


def test_an_empty_queue_is_a_clear_error():
    with LoopbackLLM() as server:
        with LLMClient(settings(server.url)) as client:
            call = client.complete(MESSAGES)
    assert "no scripted response left" in call.error and call.attempts == 1
