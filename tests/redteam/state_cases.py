"""Hostile components against the protocol (issue 11, item 7): forged replies.

Each is a complete, otherwise valid component whose only fault is the hostile construct. Most
would also be refused by the static check; these cases run with it bypassed, to show that the
parent gives them the verdict named here on its own: `stage` and `status` of the last stage, and
`reason`, a regular expression the verdict's message must match. (State carried between runs is
tests/redteam/carry_cases.py: no verdict is needed there, as no run shares a process with
another; what is tested is that it has no effect.)
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StateCase:
    name: str
    component: str
    code: str  # appended to the shipped module's text
    stage: str
    status: str
    reason: str


PREDICT = "\ndef predict(model, inputs, hp):\n"
# The worker's protocol pipe, found as the attacker did: argv, and os through torch; and
# the message the worker is handling, found by walking the frames.
FORGE = (
    "    out_fd = int(torch.sys.argv[2])\n"
    "    json, struct = torch.sys.modules['json'], torch.sys.modules['struct']\n"
    "    def forge(header, payload=b''):\n"
    "        data = json.dumps(header).encode()\n"
    "        torch.serialization.os.write(out_fd, struct.pack('!II', len(data), len(payload)) + data + payload)\n"
    "    message, frame = {}, torch.sys._getframe()\n"
    "    while frame is not None:\n"
    "        found = frame.f_locals.get('message')\n"
    "        if isinstance(found, dict) and 'type' in found:\n"
    "            message = found\n"
    "        frame = frame.f_back\n"
)

STATE_CASES = [
    StateCase("forges early prepared and logits replies during the warm-up", "tta",
              PREDICT + FORGE + "    if message.get('type') == 'warmup':\n        forge({'type': 'prepared'})\n"
              "        forge({'type': 'logits', 'shape': [len(inputs), 10]}, bytes(40 * len(inputs)))\n"
              "    return model(inputs)\n",
              "smoke", "failed", "where 'warm' was due"),
    StateCase("forges logits not bound to the run", "tta",
              PREDICT + FORGE + "    if message.get('type') == 'go':\n"
              "        forge({'type': 'logits', 'nonce': 'guess', 'shape': [len(inputs), 10]}, bytes(40 * len(inputs)))\n"
              "    return model(inputs)\n",
              "timed", "failed", "does not carry this run's nonce"),
]


def memorising_tta(test_labels) -> str:
    """A TTA that answers from a table of the test labels by position (as if it had learned them)."""
    table = ", ".join(str(int(label)) for label in test_labels)
    return (f"\nANSWERS = [{table}]\n" + PREDICT + "    index = torch.arange(len(inputs)) % len(ANSWERS)\n"
            "    table = torch.tensor(ANSWERS, device=inputs.device)[index]\n"
            "    return torch.nn.functional.one_hot(table, 10).float() + 0 * model(inputs)\n")
