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

# Issue 11: references that reach files, processes, frames or shared state through torch itself,
# and memorised answers. Each is refused at the static stage, before any worker starts.
LABEL_TABLE = "3817265940" * 1000  # 10,000 characters, as many as the test labels
ISSUE_11_STATIC_CASES = [
    Case("reads the labels with torch.ops.aten.from_file", "tta",
         PREDICT + "    raw = torch.ops.aten.from_file.default('/root/.cache/evolve/cifar10_uint8.npz', False, 1 << 20,"
         " dtype=torch.uint8)\n    return model(inputs)\n", "static", "rejected"),
    Case("writes a file with torch.serialization.save", "tta",
         PREDICT + "    torch.serialization.save(model.state_dict(), '/tmp/weights.pt')\n    return model(inputs)\n",
         "static", "rejected"),
    Case("writes on the protocol pipe through torch.serialization.os", "tta",
         PREDICT + "    torch.serialization.os.write(1, b'{\"type\": \"logits\"}')\n    return model(inputs)\n",
         "static", "rejected"),
    Case("walks frames through torch.sys._getframe", "tta",
         PREDICT + "    frame = torch.sys._getframe(1)\n    return model(inputs)\n", "static", "rejected"),
    Case("reaches the harness's modules through torch.sys.modules", "tta",
         PREDICT + "    harness = torch.sys.modules['evaluator.harness']\n    return model(inputs)\n", "static", "rejected"),
    Case("walks frames through a traceback", "tta",
         PREDICT + "    try:\n        raise ValueError\n    except ValueError as e:\n        frame = e.__traceback__.tb_frame\n"
         "    return model(inputs)\n", "static", "rejected"),
    Case("saves and loads a model with torch.jit", "tta",
         PREDICT + "    torch.jit.save(torch.jit.script(model), '/tmp/m.pt')\n    return model(inputs)\n", "static", "rejected"),
    Case("starts a shell through torch.utils.cpp_extension", "tta",
         PREDICT + "    torch.utils.cpp_extension.load_inline('x', 'int main() { return system(\"sh\"); }')\n"
         "    return model(inputs)\n", "static", "rejected"),
    Case("probes the system with torch.utils.collect_env", "tta",
         PREDICT + "    info = torch.utils.collect_env.get_pretty_env_info()\n    return model(inputs)\n", "static", "rejected"),
    Case("writes through an alias of torch.serialization", "tta",
         "\nfrom torch import serialization as store\n" + PREDICT
         + "    store.save(model.state_dict(), '/tmp/weights.pt')\n    return model(inputs)\n", "static", "rejected"),
    Case("stashes state on torch.backends", "tta",
         PREDICT + "    torch.backends.stash = {k: v.clone() for k, v in model.state_dict().items()}\n    return model(inputs)\n",
         "static", "rejected"),
    Case("stashes state on a torch class", "tta",
         PREDICT + "    torch.nn.Module.stash = model.head.weight.detach().clone()\n    return model(inputs)\n",
         "static", "rejected"),
    Case("hides a lookup behind a computed getattr", "tta",
         PREDICT + "    head = getattr(model, 'he' + 'ad')\n    return model(inputs)\n", "static", "rejected"),
    Case("memorises the test labels in a literal", "tta",
         f"\nLABELS = '{LABEL_TABLE}'\n" + PREDICT
         + "    labels = torch.tensor([int(c) for c in LABELS[: len(inputs)]])\n"
         "    return F.one_hot(labels, 10).float() + 0 * model(inputs)\n", "static", "rejected"),
]


# Raw memory: views, storages, addresses and buffers that reach outside a tensor's own storage
# (measured on torch 2.13 and numpy 2.4: see evaluator/static_check/raw_memory.py).
RAW_MEMORY_STATIC_CASES = [
    Case("reads past its batch with as_strided", "tta",
         PREDICT + "    everything = inputs[:1].as_strided((inputs.numel(),), (1,))\n    return model(inputs)\n",
         "static", "rejected"),
    Case("shrinks a weight's storage under the tensor", "tta",
         PREDICT + "    model.head.weight.untyped_storage().resize_(4)\n    return model(inputs)\n", "static", "rejected"),
    Case("points a tensor at another storage with set_", "tta",
         PREDICT + "    spy = torch.zeros(1).set_(inputs.untyped_storage(), 0, (1 << 24,))\n    return model(inputs)\n",
         "static", "rejected"),
    Case("reads memory at an address through __array_interface__", "tta",
         "\nimport numpy as np\n\nclass Window:\n    def __init__(self, address):\n        self.address = address\n\n"
         "    @property\n    def __array_interface__(self):\n"
         "        return {'data': (self.address, False), 'shape': (1 << 20,), 'typestr': '|u1', 'version': 3}\n"
         + PREDICT + "    memory = np.asarray(Window(inputs.data_ptr()))\n    return model(inputs)\n", "static", "rejected"),
    Case("builds an array-interface class with type()", "tta",
         "\nimport numpy as np\n" + PREDICT
         + "    Window = type('Window', (), {'__array_interface__': {'data': (1 << 40, False), 'shape': (8,), 'typestr': '|u1'}})\n"
         "    memory = np.asarray(Window())\n    return model(inputs)\n", "static", "rejected"),
    Case("writes into the interpreter's shared bytes with torch.frombuffer", "tta",
         PREDICT + "    torch.frombuffer(b'\\n', dtype=torch.uint8).fill_(32)\n    return model(inputs)\n", "static", "rejected"),
    Case("writes into shared bytes through the class of an array", "tta",
         "\nimport numpy as np\n" + PREDICT
         + "    raw = type(np.zeros(1))((1,), np.uint8, buffer=b'\\n')\n    torch.from_numpy(raw).fill_(32)\n"
         "    return model(inputs)\n", "static", "rejected"),
    Case("frees an array under its view with resize(refcheck=False)", "tta",
         "\nimport numpy as np\n" + PREDICT
         + "    a = np.zeros(1 << 16)\n    view = torch.from_numpy(a)\n    a.resize((1 << 24,), refcheck=False)\n"
         "    return model(inputs) + view[:10].sum()\n", "static", "rejected"),
    Case("writes outside every storage with a sparse index", "tta",
         PREDICT + "    poke = torch.sparse_coo_tensor([[1 << 20]], [1.0], (2,))\n    torch.zeros(2) + poke\n"
         "    return model(inputs)\n", "static", "rejected"),
    Case("corrupts the indices of a sparse embedding gradient", "tta",
         PREDICT + "    with torch.enable_grad():\n        e = torch.nn.Embedding(4, 2, sparse=True)\n"
         "        e(torch.tensor([1])).sum().backward()\n    e.weight.grad.abs().indices().fill_(1 << 20)\n"
         "    return model(inputs)\n", "static", "rejected"),
]


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
    *ISSUE_11_STATIC_CASES,
    *RAW_MEMORY_STATIC_CASES,
]
