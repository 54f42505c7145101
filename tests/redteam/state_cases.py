"""Hostile components against the run-state and clock layer (issue 11, items 3, 5 and 7).

Each is a complete, otherwise valid component whose only fault is the hostile construct. Most
would also be refused by the static check; these cases run with it bypassed, to show that the
runtime layer gives them the verdict named here on its own: `stage` and `status` of the last
stage, and `reason`, a regular expression the verdict's message must match.
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
RESET = "\n_shipped_reset = CifarNet.reset\n\ndef _hostile_reset(self):\n"
INSTALL_RESET = "\nCifarNet.reset = _hostile_reset\n"
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
    StateCase("stashes trained weights in torch.backends", "tta",
              PREDICT + "    if 'stash' not in vars(torch.backends):\n        torch.backends.stash = {}\n"
              "    torch.backends.stash['head'] = model.head.weight.detach().clone()\n    return model(inputs)\n",
              "timed", "failed", "torch.backends: stash"),
    StateCase("stashes trained weights on a torch class", "tta",
              PREDICT + "    torch.nn.Module.memory = model.head.weight.detach().clone()\n    return model(inputs)\n",
              "timed", "failed", "torch.nn.modules.module.Module: memory"),
    StateCase("stashes trained weights in place in a torch module's namespace", "tta",
              PREDICT + "    kept = vars(torch.nn.init).setdefault('kept', torch.zeros(model.head.weight.shape))\n"
              "    kept.copy_(model.head.weight.detach())\n    return model(inputs)\n",
              "timed", "failed", "torch.nn.init: kept"),
    StateCase("skips its reset and keeps trained weights", "architecture",
              RESET + "    frame = torch.sys._getframe()\n    while frame is not None:\n"
              "        message = frame.f_locals.get('message')\n"
              "        if isinstance(message, dict) and message.get('type') == 'go':  # a timed run: keep the weights\n"
              "            for name, p in self.named_parameters():\n                p.requires_grad_(self.trainable[name])\n"
              "            return\n        frame = frame.f_back\n    _shipped_reset(self)\n" + INSTALL_RESET,
              "timed", "failed", r"after reset\(\) the network differs"),
    StateCase("pre-trains inside reset() on data found through frames", "architecture",
              RESET + "    _shipped_reset(self)\n    frame = torch.sys._getframe()\n    while frame is not None:\n"
              "        session = frame.f_locals.get('self')\n"
              "        if type(session).__name__ == 'WorkerSession' and session.train_images is not None:\n"
              "            run = session.speedrun\n"
              "            torch.sys.modules['evaluator.training'].train(run.modules, self, dict(run.hp, epochs=0.2), run.orthogonalize,\n"
              "                                                        session.train_images, session.train_labels)\n"
              "            return\n        frame = frame.f_back\n" + INSTALL_RESET,
              "timed", "failed", r"after reset\(\) the network differs"),
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
    StateCase("forges logits with this run's nonce and a checked reply", "tta",
              PREDICT + FORGE + "    if message.get('type') == 'go':\n"
              "        logits = model(inputs).float().cpu().numpy().tobytes()\n"
              "        forge({'type': 'logits', 'nonce': message['nonce'], 'shape': [len(inputs), 10]}, logits)\n"
              "        forge({'type': 'checked', 'nonce': message['nonce']})\n"
              "    return model(inputs)\n",
              "timed", "failed", "wrote on its pipe before the parent sent|where 'prepared' was due"),
]


def memorising_tta(test_labels) -> str:
    """A TTA that answers from a table of the test labels by position (as if it had learned them)."""
    table = ", ".join(str(int(label)) for label in test_labels)
    return (f"\nANSWERS = [{table}]\n" + PREDICT + "    index = torch.arange(len(inputs)) % len(ANSWERS)\n"
            "    table = torch.tensor(ANSWERS, device=inputs.device)[index]\n"
            "    return torch.nn.functional.one_hot(table, 10).float() + 0 * model(inputs)\n")
