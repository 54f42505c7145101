"""The LLM client: one chat completion per call, a full record of every call, and the budget.

It works with OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...) through
`llm.base_url`. Each call draws a model by the configured weights. Timeouts, 429 and 5xx are
retried by the openai client itself (`max_retries`, exponential backoff, honouring Retry-After);
every HTTP attempt is counted through an httpx event hook so the record shows the retries.

A call never raises for what the endpoint does: a failed call (timeout, connection error, HTTP
error after the retries, an empty reply) returns an LLMCall with `error` set, and is logged as a
warning. Programming errors still raise.

The openai package is imported inside the three places that use it, not at the top: it takes about
0.5 s to import (measured after torch and pydantic are loaded), and every search imports this module
for LLMCall and Budget, also when the built-in mutator proposes and no call is ever made.
"""

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Self

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from evolve.config import ExperimentConfig, LLMSettings, ModelSpec

log = logging.getLogger(__name__)

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


class LLMCall(BaseModel):
    """One call to the LLM, failed or not, as the database stores it."""

    model: str
    endpoint: str
    messages: list[dict[str, str]] = Field(description="the prompt: chat messages with role and content")
    response: str | None = Field(None, description="the reply's text; None when the call failed")
    finish_reason: str | None = None
    tokens_in: int | None = Field(None, description="prompt tokens the endpoint reported")
    tokens_out: int | None = Field(None, description="completion tokens the endpoint reported")
    latency_seconds: float = Field(description="wall-clock time of the call, retries and backoff included")
    cost_usd: float = Field(0.0, description="from the reported tokens and the model's configured prices")
    attempts: int = Field(0, description="HTTP requests sent (1 + retries)")
    http_statuses: list[int] = Field(default_factory=list, description="status of each HTTP response, in order")
    error: str | None = Field(None, description="why the call failed; None when it succeeded")
    started_at: datetime

    @property
    def ok(self) -> bool:
        return self.error is None


def call_cost(model: ModelSpec, tokens_in: int | None, tokens_out: int | None) -> float:
    """USD for the tokens at the model's prices per million tokens."""
    return ((tokens_in or 0) * model.input_usd_per_million + (tokens_out or 0) * model.output_usd_per_million) / 1e6


class LLMClient:
    """Chat completions against the configured endpoint, with weighted model choice."""

    def __init__(self, settings: LLMSettings, rng: np.random.Generator | None = None):
        if not settings.models:
            raise ValueError("no LLM models are configured (llm.models): add one, or use the built-in mutator")
        self.settings = settings
        self.rng = rng or np.random.default_rng()
        self.endpoint = settings.base_url or OPENAI_DEFAULT_URL
        self._attempts = threading.local()  # per-thread counters: calls may run in several threads
        self._rng_lock = threading.Lock()  # numpy Generators are not thread-safe
        import openai  # 0.5 s, only where an LLM is configured (module docstring)

        http_client = openai.DefaultHttpxClient(
            event_hooks={"request": [self._on_request], "response": [self._on_response]}
        )
        key = settings.api_key.get_secret_value() if settings.api_key is not None else "none"  # local servers need none
        self.client = openai.OpenAI(
            api_key=key,
            base_url=self.endpoint,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            http_client=http_client,
        )
        weights = np.array([m.weight for m in settings.models], dtype=float)
        self._probabilities = weights / weights.sum()

    def _on_request(self, request) -> None:
        self._attempts.count = getattr(self._attempts, "count", 0) + 1

    def _on_response(self, response) -> None:
        self._attempts.statuses = [*getattr(self._attempts, "statuses", []), response.status_code]

    def choose_model(self) -> ModelSpec:
        """A model drawn by the configured weights."""
        with self._rng_lock:
            index = int(self.rng.choice(len(self.settings.models), p=self._probabilities))
        return self.settings.models[index]

    def model_named(self, name: str) -> ModelSpec:
        for model in self.settings.models:
            if model.name == name:
                return model
        raise ValueError(f"model {name!r} is not configured: choose one of {', '.join(m.name for m in self.settings.models)}")

    def complete(self, messages: list[dict[str, str]], model: str | None = None) -> LLMCall:
        """One chat completion (the model drawn by weight unless named); never raises for API failures."""
        import openai

        spec = self.model_named(model) if model else self.choose_model()
        self._attempts.count, self._attempts.statuses = 0, []
        started_at = datetime.now(UTC)
        start = time.perf_counter()
        record = {"model": spec.name, "endpoint": self.endpoint, "messages": messages, "started_at": started_at}
        try:
            completion = self.client.chat.completions.create(
                model=spec.name,
                messages=messages,
                temperature=spec.temperature,
                max_tokens=spec.max_tokens,
            )
        except openai.APIError as e:
            call = LLMCall(**record, latency_seconds=time.perf_counter() - start, error=describe_api_error(e),
                           attempts=self._attempts.count, http_statuses=self._attempts.statuses)
            log.warning("LLM call to %s (%s) failed after %d attempts: %s", spec.name, self.endpoint, call.attempts, call.error)
            return call
        latency = time.perf_counter() - start
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage is not None else None
        tokens_out = usage.completion_tokens if usage is not None else None
        if usage is None:
            log.warning("%s at %s reported no token usage: the call's cost is counted as 0", spec.name, self.endpoint)
        choice = completion.choices[0] if completion.choices else None
        text = choice.message.content if choice is not None else None
        error = None
        if not text:
            reason = choice.finish_reason if choice is not None else "no choices"
            error = f"the model returned no text (finish_reason: {reason})"
            log.warning("LLM call to %s returned no text: %s", spec.name, reason)
        return LLMCall(
            **record,
            response=text or None,
            finish_reason=choice.finish_reason if choice is not None else None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_seconds=latency,
            cost_usd=call_cost(spec, tokens_in, tokens_out),
            attempts=self._attempts.count,
            http_statuses=self._attempts.statuses,
            error=error,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def describe_api_error(error: "openai.APIError") -> str:  # noqa: F821
    """One line: the kind of failure, the HTTP status if any, and the server's message."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return "timeout: the endpoint did not answer in time (llm.timeout_seconds), retries included"
    if isinstance(error, openai.APIConnectionError):
        return f"connection error: {error.message}; check llm.base_url"
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code} ({type(error).__name__}): {error.message}"
    return f"{type(error).__name__}: {error.message}"


class Budget(BaseModel):
    """USD spent on LLM calls and GPU hours spent on evaluations, against the configured limits.

    Thread-safe: the loop may record calls and evaluations from several threads.
    """

    usd_limit: float | None = None
    gpu_hours_limit: float | None = None
    usd_spent: float = 0.0
    gpu_hours_spent: float = 0.0
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: ExperimentConfig, usd_spent: float = 0.0, gpu_hours_spent: float = 0.0) -> "Budget":
        """Limits from the configuration; spending so far (from the database, on resume) optional."""
        return cls(usd_limit=config.budget_usd, gpu_hours_limit=config.budget_gpu_hours,
                   usd_spent=usd_spent, gpu_hours_spent=gpu_hours_spent)

    def add_call(self, call: LLMCall) -> None:
        with self._lock:
            self.usd_spent += call.cost_usd

    def add_gpu_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"GPU time cannot be negative: {seconds}")
        with self._lock:
            self.gpu_hours_spent += seconds / 3600

    def exhausted_reason(self) -> str | None:
        """Why the experiment must stop, or None while money and GPU time remain."""
        if self.usd_limit is not None and self.usd_spent >= self.usd_limit:
            return f"LLM budget exhausted: ${self.usd_spent:.2f} of ${self.usd_limit:.2f} spent"
        if self.gpu_hours_limit is not None and self.gpu_hours_spent >= self.gpu_hours_limit:
            return f"GPU budget exhausted: {self.gpu_hours_spent:.2f} of {self.gpu_hours_limit:.2f} GPU hours spent"
        return None

    @property
    def exhausted(self) -> bool:
        return self.exhausted_reason() is not None
