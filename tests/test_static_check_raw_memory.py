"""The raw-memory rule: every construct that reaches memory outside a tensor's or array's storage is refused.

As in test_static_check.py, snippets are placed at the top of the baseline tta module and never
run; each refusal is one `raw-memory` violation on the snippet's line. What each construct does
when it runs was measured on torch 2.13 and numpy 2.4 (raw_memory.py's docstring).
"""

import pytest

from evaluator.static_check import check_source

T = "import torch\nimport numpy as np\nfrom torch import nn\nimport torch.nn.functional as F\ndef f(t, a, hp):\n"

REFUSED = {
    # Views placed by hand.
    "t.as_strided": "    return t.as_strided((1 << 30,), (1,))",
    "t.as_strided_": "    return t.clone().as_strided_((4,), (1,))",
    "t.as_strided_scatter": "    return t.as_strided_scatter(t, (4,), (1,))",
    "torch.as_strided": "    return torch.as_strided(t, (4,), (1,))",
    "torch.as_strided_copy": "    return torch.as_strided_copy(t, (4,), (1,))",
    "torch.Tensor.as_strided": "    return torch.Tensor.as_strided(t, (4,), (1,))",
    "an alias of torch.as_strided": "    s = torch.as_strided\n    return s(t, (4,), (1,))",
    "a constant getattr of as_strided": "    return getattr(t, 'as_strided')((4,), (1,))",
    "a bound as_strided kept for later": "    view = t.as_strided\n    return view((4,), (1,))",
    # Storages: shrunk under a tensor, the tensor reads past the end.
    "t.set_": "    return torch.zeros(1).set_(t, 0, (1 << 20,))",
    "torch.Tensor.set_": "    return torch.Tensor.set_(torch.zeros(1), t)",
    "t.untyped_storage": "    return t.untyped_storage().resize_(4)",
    "t.storage": "    return t.storage().resize_(1)",
    "t.storage_type": "    return t.storage_type()(8)",
    "torch.UntypedStorage": "    return torch.UntypedStorage(8)",
    "torch.FloatStorage": "    return torch.FloatStorage(8)",
    "a storage class's from_buffer": "    return torch.UntypedStorage.from_buffer(b'ab', byte_order='native')",
    # Addresses and the protocols that read them.
    "t.data_ptr": "    return t.data_ptr()",
    "t.const_data_ptr": "    return t.const_data_ptr()",
    "a match pattern reading data_ptr": "    match t:\n        case torch.Tensor(data_ptr=p):\n            return p",
    "def __array_interface__": "    class A:\n        @property\n        def __array_interface__(self):\n            return {}",
    "def __cuda_array_interface__": "    class A:\n        def __cuda_array_interface__(self):\n            return {}",
    "def __dlpack__": "    class A:\n        def __dlpack__(self, stream=None):\n            return None",
    "def __getattr__": "    class A:\n        def __getattr__(self, name):\n            return {}",
    "def __buffer__": "    class A:\n        def __buffer__(self, flags):\n            return None",
    "type with a namespace dict": "    return type('A', (), {'__array_interface__': {}})",
    "type(x) called": "    return type(a)((1,), np.uint8, buffer=b'x')",
    "torch.cuda.caching_allocator_delete": "    torch.cuda.caching_allocator_delete(hp['ptr'])",
    "torch.cuda.caching_allocator_alloc": "    return torch.cuda.caching_allocator_alloc(64)",
    "torch.cuda.ExternalStream": "    return torch.cuda.ExternalStream(hp['ptr'])",
    "torch.cuda.Stream with a raw stream id": "    return torch.cuda.Stream(stream_id=1, device_index=0, device_type=1)",
    # Buffers that belong to other (immutable) objects.
    "torch.frombuffer": "    return torch.frombuffer(b'\\n', dtype=torch.uint8)",
    "torch.asarray": "    return torch.asarray(b'\\n', dtype=torch.uint8)",
    "np.frombuffer": "    return np.frombuffer(b'\\n', np.uint8)",
    "np.ndarray over a buffer": "    return np.ndarray((1,), np.uint8, buffer=b'\\n')",
    "np.recarray over a buffer": "    return np.recarray((1,), np.uint8, buf=b'\\n')",
    "a subclass of np.ndarray": "    class M(np.ndarray):\n        pass\n    return M",
    # Memory freed under a view.
    "a.resize(refcheck=False)": "    a.resize((1 << 20,), refcheck=False)",
    "np.ndarray.resize": "    np.ndarray.resize(a, (1 << 20,), refcheck=False)",
    # Sparse tensors, whose indices torch does not check.
    "torch.sparse_coo_tensor": "    return torch.sparse_coo_tensor([[1 << 20]], [1.0], (2,))",
    "torch.sparse_csr_tensor": "    return torch.sparse_csr_tensor(t, t, t, (2, 2))",
    "a sparse layout": "    return torch.zeros(2, layout=torch.sparse_coo)",
    "t.to_sparse": "    return t.to_sparse()",
    "t.to_sparse_csr": "    return t.to_sparse_csr()",
    "t.sparse_resize_": "    return t.sparse_resize_((2,), 1, 0)",
    "nn.Embedding(sparse=True)": "    return nn.Embedding(4, 2, sparse=True)",
    "nn.Embedding with sparse by position": "    return nn.Embedding(4, 2, None, None, 2.0, False, True)",
    "nn.Embedding with **kwargs": "    return nn.Embedding(4, 2, **hp)",
    "nn.Embedding.from_pretrained(sparse=...)": "    return nn.Embedding.from_pretrained(t, sparse=hp['s'])",
    "F.embedding with sparse by position": "    return F.embedding(t, t, None, None, 2.0, False, True)",
    "nn.Embedding in a container": "    return [nn.Embedding][0](4, 2, None, None, 2.0, False, True)",
    "a subclass of nn.Embedding": "    class E(nn.Embedding):\n        pass\n    return E",
    "nn.Embedding.__init__ on another object": "    nn.Embedding.__init__(hp['m'], 4, 2, None, None, 2.0, False, True)",
    "an embedding's sparse flag set later": "    e = nn.Embedding(4, 2)\n    e.sparse = True\n    return e",
    "an embedding's sparse flag set by setattr": "    e = nn.Embedding(4, 2)\n    setattr(e, 'sparse', True)\n    return e",
    "sparse=True to a callable the check cannot name": "    return hp['layer'](4, 2, sparse=True)",
    # Ops whose offsets, lengths or indices torch does not check (raw_memory.UNCHECKED_INDEX_OPS).
    "torch.segment_reduce with offsets before the data": (
        "    return torch.segment_reduce(t, 'sum', offsets=torch.tensor([-4, 0, 6]))"),
    "torch.segment_reduce with lengths": "    return torch.segment_reduce(t, 'max', lengths=hp['lengths'])",
    "F.embedding_bag with a negative offset": "    return F.embedding_bag(t, a, torch.tensor([0, -4]))",
    "torch.embedding_bag": "    return torch.embedding_bag(a, t, torch.tensor([0, -100000]), False, 0)",
    "nn.EmbeddingBag": "    return nn.EmbeddingBag(4, 2)(t, torch.tensor([0, -4]))",
    "nn.EmbeddingBag.from_pretrained": "    return nn.EmbeddingBag.from_pretrained(a)",
    "a subclass of nn.EmbeddingBag": "    class B(nn.EmbeddingBag):\n        pass\n    return B",
    "an alias of F.embedding_bag": "    bag = F.embedding_bag\n    return bag(t, a, hp['offsets'])",
    "F.embedding_bag in a container": "    return [F.embedding_bag][0](t, a, hp['offsets'])",
    "a constant getattr of segment_reduce": "    return getattr(torch, 'segment_reduce')(t, 'sum', lengths=hp['n'])",
    "from-import of segment_reduce": "    from torch import segment_reduce\n    return segment_reduce(t, 'sum', lengths=hp['n'])",
    "embedding_bag on an object the check cannot name": "    return hp['m'].embedding_bag(t, a, hp['offsets'])",
    "torch._embedding_bag": "    return torch._embedding_bag(a, t, hp['offsets'])",
    "torch._embedding_bag_forward_only": "    return torch._embedding_bag_forward_only(a, t, hp['offsets'])",
    "torch._segment_reduce": "    return torch._segment_reduce(t, 'sum', lengths=hp['n'])",
    "torch._unsafe_index": "    return torch._unsafe_index(t, [hp['i']])",
    "torch._unsafe_index_put": "    return torch._unsafe_index_put(t, [hp['i']], t)",
    "torch._unsafe_masked_index": "    return torch._unsafe_masked_index(t, t > 0, [hp['i']], 0.0)",
    "torch.unsafe_split": "    return torch.unsafe_split(t, 2)",
    "torch.unsafe_chunk": "    return torch.unsafe_chunk(t, 2)",
    "t.unsafe_split_with_sizes": "    return t.unsafe_split_with_sizes([1, 1])",
    "torch.Tensor.unsafe_chunk": "    return torch.Tensor.unsafe_chunk(t, 2)",
    "F.ctc_loss with unchecked target classes": "    return F.ctc_loss(t, hp['targets'], hp['il'], hp['tl'])",
    "torch.ctc_loss": "    return torch.ctc_loss(t, a, hp['il'], hp['tl'])",
    "nn.CTCLoss": "    return nn.CTCLoss()(t, a, hp['il'], hp['tl'])",
    # Ops with address arguments refused on review (raw_memory.REVIEWED_REFUSED_INDEX_OPS).
    "torch.lstm with packed batch sizes": "    return torch.lstm(t, hp['batch_sizes'], [t], [t], True, 1, 0.0, False, False)",
    "torch.quantized_gru": "    return torch.quantized_gru(t, hp['batch_sizes'], t, [t], True, 1, 0.0, False, False)",
    "torch.batch_norm_gather_stats_with_counts": (
        "    return torch.batch_norm_gather_stats_with_counts(t, t, t, t, t, 0.1, 1e-5, hp['counts'])"),
    "torch.fbgemm_linear_int8_weight": "    return torch.fbgemm_linear_int8_weight(t, t, t, hp['col_offsets'], 1.0, 0, t)",
    # The address of a numpy bit generator's state.
    "a bit generator's capsule": "    return hp['rng'].bit_generator.capsule",
}


@pytest.mark.parametrize("case", REFUSED)
def test_raw_memory_construct_is_refused_with_one_clear_message(baseline_set, case):
    snippet = T + REFUSED[case]
    violations = check_source("tta", snippet + "\n" + baseline_set.sources["tta"])
    assert violations and all(v.rule == "raw-memory" for v in violations), [str(v) for v in violations]
    lines = [v.line for v in violations]
    assert len(lines) == len(set(lines)) and min(lines) > T.count("\n"), [str(v) for v in violations]  # one per line
    assert all(v.message and v.fix for v in violations)


ALLOWED = {
    "the shape operations the components use": (
        "    x = t.view(-1).reshape(len(t), -1).t().contiguous().flip(0).unfold(0, 2, 1).permute(1, 0, 2)\n"
        "    return x.transpose(0, 1).expand(-1, -1, -1).narrow(0, 0, 1).clone().unsqueeze(0).squeeze(0), t.stride()"),
    "factories with strides and numpy interop": (
        "    e = torch.empty_strided((4,), (2,)), t.new_empty_strided((2,), (1,)), t.new_tensor([1, 2])\n"
        "    return e, torch.from_numpy(np.zeros(3)), torch.as_tensor(np.arange(3)), np.asarray(t), t.resize_(4)"),
    "np.resize and reshape copy": "    return np.resize(a, (5,)), a.reshape(-1), np.broadcast_to(a, (2, 3))",
    "np.ndarray in annotations and type tests": (
        "    b: np.ndarray = np.zeros(2)\n    return isinstance(a, np.ndarray), b"),
    "dense embeddings": (
        "    e = nn.Embedding(4, 2)\n    g = nn.Embedding(4, 2, sparse=False)\n"
        "    return e, g, F.embedding(t, t, None, None, 2.0, False), isinstance(e, nn.Embedding)"),
    "an alias of nn.Embedding bound to a name": "    E = nn.Embedding\n    return E(4, 2)",
    "other libraries' sparse flags": "    return np.meshgrid(a, a, sparse=True)",
    "topk indices and values": "    r = t.topk(2)\n    return r.indices, r.values",
    "streams by device and priority": "    return torch.cuda.Stream(torch.device('cuda'), priority=0)",
    "the checked ops that replace segment_reduce and embedding_bag": (
        "    ids = torch.repeat_interleave(torch.arange(3), hp['lengths'])\n"
        "    s = torch.zeros(3).index_add_(0, ids, t), torch.zeros(3).scatter_add(0, ids, t), torch.bincount(ids, weights=t)\n"
        "    e = F.embedding(t, a).sum(1), nn.Embedding(4, 2)(t).mean(1), a.index_select(0, t)\n"
        "    return s, e, t.chunk(2), t.split(2), t.split_with_sizes([1, 1])"),
    "ordinary dunders of a component class": (
        "    class A:\n        def __init__(self):\n            self.n = 1\n        def __len__(self):\n            return self.n\n"
        "    return A()"),
}


@pytest.mark.parametrize("case", ALLOWED)
def test_ordinary_strided_code_passes(baseline_set, case):
    snippet = T + ALLOWED[case]
    violations = check_source("tta", snippet + "\n" + baseline_set.sources["tta"])
    assert violations == [], [str(v) for v in violations]


def test_raw_memory_tables_match_the_installed_libraries():
    import torch

    from evaluator.static_check.library import MISSING, _trusted_lookup
    from evaluator.static_check.raw_memory import RAW_MEMORY_OBJECTS, STORAGE_CLASSES

    assert [name for name in RAW_MEMORY_OBJECTS if _trusted_lookup(name) is MISSING] == []
    storages = (torch.TypedStorage, torch.UntypedStorage, torch._C.StorageBase)
    public = {name for name, obj in vars(torch).items()
              if not name.startswith("_") and isinstance(obj, type) and issubclass(obj, storages)}
    assert public <= set(STORAGE_CLASSES)  # a storage class added by a newer torch must be listed
    layouts = {name for name, obj in vars(torch).items() if isinstance(obj, torch.layout) and not name.startswith("_")}
    assert layouts - {"strided"} <= {name.removeprefix("torch.") for name in RAW_MEMORY_OBJECTS}


def test_raw_memory_redteam_cases_are_refused_by_this_rule(baseline_set):
    from tests.redteam.cases import RAW_MEMORY_STATIC_CASES

    for case in RAW_MEMORY_STATIC_CASES:
        violations = check_source(case.component, baseline_set.sources[case.component] + case.code)
        assert case.stage == "static" and violations, case.name
        assert {v.rule for v in violations} == {"raw-memory"}, (case.name, [str(v) for v in violations])


def test_every_public_op_with_unchecked_offsets_is_listed_and_refused(baseline_set):
    """Each public torch name with a stem of UNCHECKED_INDEX_STEMS is in the documented table and refused."""
    import torch

    from evaluator.static_check.library import MISSING, _trusted_lookup
    from evaluator.static_check.raw_memory import UNCHECKED_INDEX_OPS, unchecked_index_op

    assert [name for name in UNCHECKED_INDEX_OPS if _trusted_lookup(name) is MISSING] == []
    owners = {"torch": torch, "torch.nn": torch.nn, "torch.nn.functional": torch.nn.functional,
              "torch.Tensor": torch.Tensor, "torch.linalg": torch.linalg, "torch.special": torch.special,
              "torch.fft": torch.fft, "torch.autograd": torch.autograd, "torch.func": torch.func}
    public = {f"{owner}.{name}" for owner, obj in owners.items() for name in dir(obj)
              if not name.startswith("_") and unchecked_index_op(name)}
    assert {"torch.segment_reduce", "torch.embedding_bag", "torch.nn.functional.embedding_bag"} <= public
    assert public <= set(UNCHECKED_INDEX_OPS)  # a newer op of the kind must be documented in the table
    private = {f"{owner}.{name}" for owner, obj in owners.items() if owner != "torch.Tensor" for name in dir(obj)
               if name.startswith("_") and not name.startswith("__") and unchecked_index_op(name)}
    assert {"torch._embedding_bag", "torch._unsafe_index"} <= private
    for name in sorted(public | private):
        source = name.replace("torch.nn.functional.", "F.").replace("torch.nn.", "nn.")
        violations = check_source("tta", T + f"    return {source}\n" + baseline_set.sources["tta"])
        assert [v.rule for v in violations] == ["raw-memory"], (name, [str(v) for v in violations])
        assert violations[0].message and violations[0].fix


def test_private_names_of_torch_functional_and_ops_are_refused(baseline_set):
    """The structural rule under the table: every private name of torch, F and torch.ops is refused."""
    cases = {
        "    return F._no_grad_embedding_renorm_(t, t, 1.0, 2.0)": "namespace",
        "    return torch._C._nn.embedding_bag": "namespace",
        "    return torch.ops.aten.segment_reduce(t, 'sum')": "namespace",
        "    return torch.ops.aten._embedding_bag(a, t, t)": "namespace",
        "    return hp['m']._segment_reduce(t)": "private-access",  # and raw-memory, by the stem
    }
    for snippet, rule in cases.items():
        violations = check_source("tta", T + snippet + "\n" + baseline_set.sources["tta"])
        assert rule in {v.rule for v in violations}, (snippet, [str(v) for v in violations])


def test_every_public_op_with_address_arguments_is_reviewed(baseline_set):
    """torch's schemas name every op that takes index, offset or length tensors; each public one is reviewed.

    It is refused (a table of raw_memory.py, with its own reason) or listed in CHECKED_INDEX_OPS and
    passes. An op a newer torch adds is refused as unreviewed at run time, and fails here until
    someone measures it and files it on one side.
    """
    import torch

    from evaluator.static_check.library import _trusted_lookup
    from evaluator.static_check.raw_memory import (
        CHECKED_INDEX_OPS,
        INDEX_OWNERS,
        REVIEWED_REFUSED_INDEX_OPS,
        UNREVIEWED_INDEX_FIX,
        index_op_name,
        schema_index_ops,
    )

    ops = schema_index_ops()
    assert {"segment_reduce", "embedding_bag", "ctc_loss", "gather", "as_strided"} <= set(ops)
    assert [op for op in [*CHECKED_INDEX_OPS, *REVIEWED_REFUSED_INDEX_OPS] if op not in ops] == []  # no stale entry
    public: dict[str, str] = {}
    for owner in INDEX_OWNERS:
        namespace = _trusted_lookup(owner)
        names = dir(namespace) if isinstance(namespace, type) else list(vars(namespace))
        public |= {f"{owner}.{n}": index_op_name(owner, n) for n in names
                   if not n.startswith("_") and index_op_name(owner, n) in ops}
    assert len(public) > 60 and "torch.nn.functional.ctc_loss" in public and "torch.linalg.lu_solve" in public
    unreviewed = []
    for name, op in sorted(public.items()):
        shown = name.replace("torch.nn.functional.", "F.")
        if name.startswith("torch.Tensor."):
            shown = "t." + name.removeprefix("torch.Tensor.")
        violations = check_source("tta", T + f"    return {shown}(hp['x'])\n" + baseline_set.sources["tta"])
        if op in CHECKED_INDEX_OPS:
            assert violations == [], (name, [str(v) for v in violations])
            continue
        assert [v.rule for v in violations] == ["raw-memory"], (name, [str(v) for v in violations])
        if violations[0].fix.startswith(UNREVIEWED_INDEX_FIX):
            unreviewed.append(name)
    assert unreviewed == [], f"ops with address arguments nobody has reviewed: measure them, then list them: {unreviewed}"
    assert torch.segment_reduce is _trusted_lookup("torch.segment_reduce")


# The red team's bypasses (issue 25) and their kin, each as a whole tta module the harness would load:
# (the hostile lines, words the message must contain, words one of which the fix must contain).
HOSTILE_PREDICT = (
    "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
    "def predict(model: nn.Module, inputs: torch.Tensor, hp: dict) -> torch.Tensor:\n"
    "    logits = model(inputs)\n{body}    return logits\n"
)
BYPASSES = {
    "segment_reduce reads before its storage": (
        ("    flat = logits.flatten()\n"
         "    leak = torch.segment_reduce(flat, 'sum', offsets=torch.tensor([-4096, 0, flat.numel()]))\n"),
        ["segment_reduce", "offsets"], ["index_add_", "scatter_add"]),
    "segment_reduce's backward writes past the gradient": (
        ("    w = logits.detach().flatten().requires_grad_()\n"
         "    torch.segment_reduce(w, 'sum', lengths=torch.tensor([1 << 20])).sum().backward()\n"),
        ["segment_reduce", "backward"], ["index_add_", "scatter_add"]),
    "F.embedding_bag with a negative offset": (
        "    idx = torch.arange(4)\n    word = F.embedding_bag(idx, logits, torch.tensor([0, -2]))\n",
        ["embedding_bag", "offset"], ["F.embedding"]),
    "nn.EmbeddingBag with offsets": (
        "    bag = nn.EmbeddingBag(10, 4)\n    word = bag(torch.arange(4), torch.tensor([0, -2]))\n",
        ["EmbeddingBag", "offset"], ["F.embedding"]),
    "torch._embedding_bag": (
        "    out = torch._embedding_bag(logits, torch.arange(4), torch.tensor([0, -2]))\n",
        ["_embedding_bag"], ["F.embedding"]),
    "torch._unsafe_index": (
        "    out = torch._unsafe_index(logits, [torch.tensor([1 << 30])])\n", ["_unsafe_index"], ["index_select", "indexing"]),
    "torch.ops.aten raw access": (
        "    out = torch.ops.aten.segment_reduce.default(logits, 'sum', offsets=torch.tensor([-8, 0]))\n",
        ["torch.ops"], ["public torch function"]),
    "a nested tensor from a buffer": (
        "    out = torch._nested_view_from_buffer(logits, torch.tensor([[4]]), torch.tensor([[1]]), torch.tensor([-64]))\n",
        ["_nested_view_from_buffer", "private"], ["public op"]),
    "torch._C bindings": ("    out = torch._C._nn.embedding_bag\n", ["_C", "private"], ["public op"]),
    "a sparse tensor without invariant checks": (
        "    s = torch.sparse_coo_tensor(torch.tensor([[1 << 20]]), torch.ones(1), (4,), check_invariants=False)\n",
        ["sparse_coo_tensor", "sparse"], ["dense"]),
    "as_strided past the batch": ("    everything = inputs[:1].as_strided((inputs.numel(),), (1,))\n",
                                  ["as_strided", "view"], ["reshape"]),
    "set_ onto a storage offset": ("    t = torch.zeros(1).set_(logits, 1 << 20, (4,))\n", ["set_", "storage"], ["reshape"]),
    "a storage wrapped by hand": ("    s = torch.UntypedStorage(8)\n", ["UntypedStorage", "storage"], ["reshape"]),
    "torch.from_file": ("    s = torch.from_file('/proc/self/mem', size=8)\n", ["from_file", "file"], ["remove"]),
    "F.ctc_loss with unchecked target classes": (
        ("    lp = logits.log_softmax(-1).unsqueeze(1).expand(-1, 1, -1)\n"
         "    leak = F.ctc_loss(lp, torch.tensor([[-100000]]), torch.tensor([len(lp)]), torch.tensor([1]))\n"),
        ["ctc_loss", "targets"], ["cross_entropy", "nll_loss"]),
    "torch.unsafe_split": ("    parts = torch.unsafe_split(logits, 2)\n", ["unsafe_split", "unsafe"], ["split"]),
}


@pytest.mark.parametrize("case", BYPASSES)
def test_bypass_module_is_refused_with_what_why_and_instead(case):
    body, said, instead = BYPASSES[case]
    violations = check_source("tta", HOSTILE_PREDICT.format(body=body))
    assert violations, case
    for word in said:  # what is refused, and why
        assert any(word in v.message for v in violations), (case, word, [str(v) for v in violations])
    assert any(any(word in v.fix for word in instead) for v in violations), (case, [str(v) for v in violations])
    assert all(v.message.endswith(".") and v.fix for v in violations)
