"""Malicious or broken components, each with the verdict the evaluator must give it.

Each case appends code to a shipped component (a later `def` replaces the shipped one), so the
rest of the module stays valid and only the attack differs. `stage` is where the cascade must
stop it and `status` the verdict there.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    component: str
    code: str  # appended to the shipped module's text
    stage: str
    status: str
    runtime_check: bool = False  # also run with the static check bypassed, to test the runtime guards


PREDICT = "\ndef predict(model, inputs, hp):\n"

CASES = [
    Case("reads test labels from disk", "tta",
         PREDICT + "    import numpy as np\n    labels = np.load('/root/.cache/evolve/cifar10_uint8.npz')['test_labels']\n"
         "    return torch.nn.functional.one_hot(torch.as_tensor(labels), 10).float()\n", "static", "rejected"),
    Case("opens a file with open()", "tta",
         PREDICT + "    with open('/etc/hostname') as f:\n        f.read()\n    return model(inputs)\n",
         "static", "rejected", runtime_check=True),
    Case("finds labels through the garbage collector", "tta",
         "\nimport gc\n" + PREDICT + "    objs = gc.get_objects()\n    return model(inputs)\n", "static", "rejected"),
    Case("walks stack frames", "tta",
         PREDICT + "    frame = model.forward.__func__.__globals__\n    return model(inputs)\n", "static", "rejected"),
    Case("monkeypatches synchronize", "optimizer",
         "\ntorch.cuda.synchronize = lambda *a: None\n", "static", "rejected"),
    Case("replaces CUDA events", "optimizer",
         "\nclass FakeEvent:\n    pass\n\ndef build_optimizer(model, hp, total_steps, steps_per_epoch, orthogonalize):\n"
         "    torch.cuda.Event = FakeEvent\n    return TrainingOptimizer(model, hp, total_steps, steps_per_epoch, orthogonalize)\n",
         "static", "rejected"),
    Case("trains on test images inside TTA", "tta",
         PREDICT + "    with torch.enable_grad():\n        model.train()\n        loss = model(inputs).logsumexp(1).sum()\n"
         "        loss.backward()\n        with torch.no_grad():\n            for p in model.parameters():\n"
         "                if p.grad is not None:\n                    p.sub_(1e-3 * p.grad)\n    model.eval()\n    return model(inputs)\n",
         "smoke", "failed", runtime_check=True),
    Case("updates batch-norm statistics on test images", "tta",
         PREDICT + "    model.train()\n    model(inputs)\n    model.eval()\n    return model(inputs)\n",
         "smoke", "failed", runtime_check=True),
    Case("caches trained weights in a module global", "optimizer",
         "\nSAVED = {}\n\ndef build_optimizer(model, hp, total_steps, steps_per_epoch, orthogonalize):\n"
         "    if SAVED:\n        model.load_state_dict(SAVED['weights'])\n"
         "    SAVED['weights'] = model.state_dict()\n    return TrainingOptimizer(model, hp, total_steps, steps_per_epoch, orthogonalize)\n",
         "static", "rejected"),
    Case("stashes trained weights on the model object", "tta",
         PREDICT + "    model.stash = {k: v.clone() for k, v in model.state_dict().items()}\n    return model(inputs)\n",
         "timed", "failed"),
    Case("stashes trained weights on a parameter", "tta",
         PREDICT + "    model.head.weight.memory = model.head.weight.detach().clone()\n    return model(inputs)\n",
         "timed", "failed"),
    Case("caches trained weights in a default argument", "tta",
         "\ndef remember(x, cache={}):\n    cache['last'] = x\n" + PREDICT
         + "    remember(model.head.weight.detach().clone())\n    return model(inputs)\n", "timed", "failed"),
    Case("caches trained weights in a class attribute", "tta",
         "\nclass Memory:\n    last = None\n" + PREDICT
         + "    Memory.last = model.head.weight.detach().clone()\n    return model(inputs)\n", "timed", "failed"),
    Case("marks the harness's test images", "augmentation",
         "\n_original = preprocess\n\ndef preprocess(images, hp):\n    images.seen = images.float().mean()\n"
         "    return _original(images, hp)\n", "timed", "failed"),
    Case("uses the global statement", "tta",
         "\nCALLS = 0\n" + PREDICT + "    global CALLS\n    CALLS += 1\n    return model(inputs)\n", "static", "rejected"),
    Case("spawns a process", "tta",
         "\nimport subprocess\n" + PREDICT + "    subprocess.run(['true'])\n    return model(inputs)\n", "static", "rejected"),
    Case("spawns a process by dynamic import", "tta",
         PREDICT + "    __import__('subprocess').run(['true'])\n    return model(inputs)\n", "static", "rejected", runtime_check=True),
    Case("starts a thread", "tta",
         "\nimport threading\n" + PREDICT + "    threading.Thread(target=lambda: None).start()\n    return model(inputs)\n",
         "static", "rejected"),
    Case("opens a socket", "tta",
         "\nfrom socket import socket\n" + PREDICT + "    socket().connect(('127.0.0.1', 9))\n    return model(inputs)\n",
         "static", "rejected"),
    Case("opens a socket by dynamic import", "tta",
         PREDICT + "    __import__('socket').socket().connect(('127.0.0.1', 9))\n    return model(inputs)\n",
         "static", "rejected", runtime_check=True),
    Case("sets a lucky seed", "augmentation",
         "\n_original_preprocess = preprocess\n\ndef preprocess(images, hp):\n    torch.manual_seed(0)\n"
         "    return _original_preprocess(images, hp)\n", "static", "rejected"),
    Case("runs exec", "tta", PREDICT + "    exec('x = 1')\n    return model(inputs)\n", "static", "rejected"),
    Case("loops forever", "tta", PREDICT + "    while True:\n        pass\n", "contracts", "failed", runtime_check=True),
    Case("allocates huge memory", "tta",
         PREDICT + "    hoard = [torch.ones(1 << 28) for _ in range(64)]\n    return model(inputs)\n",
         "contracts", "rejected", runtime_check=True),
    Case("returns logits of the wrong shape", "tta", PREDICT + "    return model(inputs)[:, :5]\n", "contracts", "rejected", runtime_check=True),
    Case("returns NaN logits", "tta", PREDICT + "    return model(inputs) * float('nan')\n", "contracts", "rejected", runtime_check=True),
    Case("has a syntax error", "tta", PREDICT + "    return model(inputs\n", "static", "rejected"),
    Case("imports a forbidden module", "tta", "\nimport scipy\n", "static", "rejected"),
    Case("imports a name that does not exist", "tta", "\nfrom torch import no_such_thing\n", "contracts", "rejected"),
    Case("calls exit", "tta", PREDICT + "    raise SystemExit(3)\n", "contracts", "failed", runtime_check=True),
    Case("prints gigabytes", "tta",
         PREDICT + "    line = 'x' * (1 << 20)\n    for _ in range(1 << 14):\n        print(line)\n    return model(inputs)\n",
         "contracts", "rejected", runtime_check=True),
    Case("breaks the optimizer contract", "optimizer",
         "\ndef build_optimizer(model, hp, total_steps, steps_per_epoch, orthogonalize):\n"
         "    opt = TrainingOptimizer(model, hp, total_steps, steps_per_epoch, orthogonalize)\n"
         "    opt.step = lambda step: None\n    return opt\n", "contracts", "rejected"),
]
