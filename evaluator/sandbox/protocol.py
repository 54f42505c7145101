"""Messages between the parent and a worker: a JSON header and an optional raw byte payload.

Never pickle: unpickling what an untrusted worker sends would let it run code in the parent,
where the test labels and the clock live. Sizes are capped so a worker cannot exhaust the
parent's memory with one message.
"""

import json
import os
import select
import struct
import time

MAX_HEADER_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 64 << 20
_LENGTHS = struct.Struct("!II")


class ProtocolError(RuntimeError):
    """A malformed, oversized or missing message."""


class WorkerTimeout(ProtocolError):
    """No complete message arrived within the stage's time limit."""


def send(fd: int, header: dict, payload: bytes = b"") -> None:
    data = json.dumps(header).encode()
    message = _LENGTHS.pack(len(data), len(payload)) + data + payload
    view = memoryview(message)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, n: int, deadline: float) -> bytes:
    chunks, remaining = [], n
    while remaining:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise WorkerTimeout("the worker did not answer in time")
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            continue
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ProtocolError("the worker closed its pipe (it exited or crashed)")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, timeout: float) -> tuple[dict, bytes]:
    deadline = time.monotonic() + timeout
    header_len, payload_len = _LENGTHS.unpack(_read_exactly(fd, _LENGTHS.size, deadline))
    if header_len > MAX_HEADER_BYTES or payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"the worker sent an oversized message ({header_len} + {payload_len} bytes)")
    try:
        header = json.loads(_read_exactly(fd, header_len, deadline))
    except ValueError as e:
        raise ProtocolError(f"the worker sent a malformed message header: {e}") from e
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("the worker sent a message without a type")
    return header, _read_exactly(fd, payload_len, deadline)
