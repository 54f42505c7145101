"""A loopback OpenAI-compatible server with scripted replies, for tests of the LLM path.

    with LoopbackLLM() as server:
        server.script(reply("..."), http_error(429), reply(search_replace("a", "b")))
        settings = LLMSettings(base_url=server.url, models=[ModelSpec(name="m")])
        ...
        server.requests  # every request received: path, headers, JSON body

Each POST to /v1/chat/completions takes the next scripted response from the queue. A response
is a reply (text, token usage), an HTTP error (status, optional Retry-After in milliseconds so
that client retries stay fast) or either of them delayed. An empty queue answers HTTP 500 with
a message saying so, and the test sees it in `requests` and in the client's record.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """One scripted response of the server."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0  # seconds to wait before answering
    prompt_tokens: int = 100
    completion_tokens: int = 50
    usage: bool = True  # whether the body reports token usage
    retry_after_ms: int | None = None
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)


def reply(content: str, prompt_tokens: int = 100, completion_tokens: int = 50, delay: float = 0.0, usage: bool = True) -> Scripted:
    return Scripted(content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, delay=delay, usage=usage)


def http_error(status: int, retry_after_ms: int | None = 10, delay: float = 0.0) -> Scripted:
    return Scripted(status=status, retry_after_ms=retry_after_ms, delay=delay)


def search_replace(search: str, replace: str) -> str:
    """A reply with one SEARCH/REPLACE block, as a model would write it."""
    return f"Here is the change.\n\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def full_module(source: str) -> str:
    """A reply with the whole module in one fence."""
    return f"The new module:\n\n```python\n{source.rstrip()}\n```\n"


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any] | None
    answered_status: int | None = None  # None while the response is pending (or was never sent)


class LoopbackLLM:
    """The server; a context manager that serves in a background thread on 127.0.0.1."""

    def __init__(self, *responses: Scripted, model_echo: bool = True, responder=None):
        """`responder(body) -> Scripted`, when given, answers every request instead of the queue (e.g. per model)."""
        self._queue: deque[Scripted] = deque(responses)
        self.responder = responder
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[ReceivedRequest] = []
        self.model_echo = model_echo
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-llm", daemon=True)

    @property
    def url(self) -> str:
        """Base URL for the openai client (ends in /v1)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *responses: Scripted) -> None:
        """Append responses to the queue."""
        with self._lock:
            self._queue.extend(responses)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def __enter__(self) -> "LoopbackLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()  # ends pending delays at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self) -> Scripted | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                record = ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(record)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._answer(record, 404, {"error": {"message": f"loopback serves /v1/chat/completions, not {self.path}"}})
                    return
                scripted = server.responder(body or {}) if server.responder else server._next()
                if scripted is None:
                    self._answer(record, 500, {"error": {"message": "loopback: no scripted response left"}},
                                 {"x-should-retry": "false"})
                    return
                if scripted.delay and server._stop.wait(scripted.delay):
                    return
                if scripted.status != 200:
                    headers = dict(scripted.headers)
                    if scripted.retry_after_ms is not None:
                        headers["retry-after-ms"] = str(scripted.retry_after_ms)
                    message = {"error": {"message": f"scripted HTTP {scripted.status}", "type": "scripted"}}
                    self._answer(record, scripted.status, message, headers)
                    return
                completion = {
                    "id": f"chatcmpl-loopback-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": (body or {}).get("model", "loopback") if server.model_echo else "loopback",
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": scripted.content},
                        "finish_reason": scripted.finish_reason,
                    }],
                }
                if scripted.usage:
                    completion["usage"] = {
                        "prompt_tokens": scripted.prompt_tokens,
                        "completion_tokens": scripted.completion_tokens,
                        "total_tokens": scripted.prompt_tokens + scripted.completion_tokens,
                    }
                self._answer(record, 200, completion, scripted.headers)

            def _answer(self, record: ReceivedRequest, status: int, payload: dict, headers: dict[str, str] | None = None):
                record.answered_status = status
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer to

        return Handler
