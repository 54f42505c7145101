"""Raw memory, as data: what lets a component reach memory outside a tensor's or an array's own storage.

Measured on torch 2.13 (CPU) and numpy 2.4 with throwaway scripts: torch checks
`as_strided` and `set_` against the end of the storage, but the storage can be shrunk under the
tensor (`t.untyped_storage().resize_(4)`, after which `t.sum()` reads past its end); numpy's
`ndarray.resize(refcheck=False)` frees memory that views still read; a class that defines
`__array_interface__` hands numpy any address (`t.data_ptr()`) to read and write; `torch.frombuffer`,
`torch.asarray` and `torch.from_numpy(np.frombuffer(...))` write into immutable `bytes` objects,
which the interpreter shares (`b"\\n"` is one object in the whole process); a sparse tensor
with an index past its size makes torch write outside every storage (`dense + sparse`).

Some public ops take offsets, lengths or indices that torch does not check against the data they
index (UNCHECKED_INDEX_OPS): `torch.segment_reduce(x, "sum", offsets=[-4, 0, 6])` reads before the
storage of `x` and its backward writes there, `offsets=[0, 3, 100000]` crashes the process;
`F.embedding_bag(i, w, offsets=[0, -4])` indexes `w` with whatever lies before the storage of `i`,
and `torch.embedding_bag` with such an offset crashes the process. Their private variants
(`torch._embedding_bag`, `torch._segment_reduce`, `torch._unsafe_index`) are refused with the
same reasons (private names are refused anyway), and so is any name containing "unsafe", which
torch gives to the ops that skip a check.

None of the shipped components needs any of these: the shape operations (view, reshape,
permute, transpose, flip, unfold, expand, narrow, contiguous, clone) stay inside the tensor.
Library objects are refused by identity (library.py); the method names, on any object the check
cannot name (a tensor, an array), and the class-level constructs by raw_memory_check.py.

The principle for ops: every private torch name and torch.ops are refused outright (namespaces.py:
torch's private ops, such as `_unsafe_index`, `_embedding_bag` and `_nested_*`, skip the checks
the public ones make); every public op that takes an address-like tensor argument is read from
torch's own schemas and refused unless reviewed as checking it (CHECKED_INDEX_OPS below).
`torch.ctc_loss` reads its log-probabilities at unchecked target classes (measured: a target of
-100000 gives a loss, no error).

This rule is a filter, not a boundary: it reads the text, and an op it does not know, or memory
reached in a way it does not model, passes it. The kernel-jailed worker is what contains a
component that corrupts memory; the filter keeps the known ways out of the search and tells the
model what to use instead.
"""

import re
from functools import cache

import torch

RAW_MEMORY_FIX = (
    "use the tensor's own shape operations (view, reshape, permute, transpose, flip, unfold, expand, narrow, "
    "contiguous, clone) and the factories (torch.zeros, torch.empty, torch.tensor, torch.as_tensor), which "
    "torch keeps inside the tensor's storage"
)
SPARSE_FIX = "use dense tensors: torch checks every index into a dense tensor"

AS_STRIDED = (
    "places a view at hand-written sizes, strides and offset in the storage behind the tensor, outside "
    "the tensor it came from (torch checks only the storage's end)"
)
STORAGE = (
    "hands out the raw storage behind a tensor, which can be shrunk under the tensor so that the "
    "tensor reads and writes past its end"
)
ADDRESS = "hands out a memory address, which other calls turn into reads and writes anywhere in the process"
SPARSE = (
    "makes a sparse tensor, whose indices torch does not check: an index past its size reads and writes "
    "outside every storage"
)

# Methods refused on any object the check cannot name (tensors, arrays, storages), whatever
# their receiver: (reason, fix). The same methods on torch.Tensor and numpy.ndarray are refused by
# identity, so `torch.Tensor.set_(t, s)` is refused too.
RAW_MEMORY_METHODS: dict[str, tuple[str, str]] = {
    "as_strided": (AS_STRIDED, RAW_MEMORY_FIX),
    "as_strided_": (AS_STRIDED, RAW_MEMORY_FIX),
    "as_strided_scatter": (AS_STRIDED, RAW_MEMORY_FIX),
    "set_": ("points the tensor at another storage, offset, sizes and strides", RAW_MEMORY_FIX),
    "untyped_storage": (STORAGE, RAW_MEMORY_FIX),
    "storage": (STORAGE, RAW_MEMORY_FIX),
    "storage_type": (("hands out a raw storage class, whose storages can be wrapped in tensors and shrunk "
                      "under them"), RAW_MEMORY_FIX),
    "data_ptr": (ADDRESS, RAW_MEMORY_FIX),
    "const_data_ptr": (ADDRESS, RAW_MEMORY_FIX),
    # numpy's bit generators: the address of the generator's state, for native code.
    "capsule": (ADDRESS, "draw numbers through the generator's own methods (rng.random, rng.integers)"),
    "cffi": (ADDRESS, "draw numbers through the generator's own methods (rng.random, rng.integers)"),
    "resize": (("frees memory that views of the array still read and write (numpy's ndarray.resize with "
                "refcheck=False)"), "use reshape, or np.resize and torch's resize_, which copy or grow"),
    "to_sparse": (SPARSE, SPARSE_FIX),
    "to_sparse_coo": (SPARSE, SPARSE_FIX),
    "to_sparse_csr": (SPARSE, SPARSE_FIX),
    "to_sparse_csc": (SPARSE, SPARSE_FIX),
    "to_sparse_bsr": (SPARSE, SPARSE_FIX),
    "to_sparse_bsc": (SPARSE, SPARSE_FIX),
    "sparse_resize_": (SPARSE, SPARSE_FIX),
    "sparse_resize_and_clear_": (SPARSE, SPARSE_FIX),
    "resize_as_sparse_": (SPARSE, SPARSE_FIX),
}
# Classes whose RAW_MEMORY_METHODS are refused by identity as well (`torch.Tensor.as_strided`).
METHOD_OWNERS = ("torch.Tensor", "numpy.ndarray")

IMMUTABLE_BUFFER = (
    "wraps a Python buffer without a copy, and torch writes into it even where it is immutable "
    "(a bytes object the interpreter shares)"
)
# Library objects refused by identity, whatever name or alias reaches them: (reason, fix).
RAW_MEMORY_OBJECTS: dict[str, tuple[str, str]] = {
    "torch.as_strided": (AS_STRIDED, RAW_MEMORY_FIX),
    "torch.as_strided_": (AS_STRIDED, RAW_MEMORY_FIX),
    "torch.as_strided_copy": (AS_STRIDED, RAW_MEMORY_FIX),
    "torch.as_strided_scatter": (AS_STRIDED, RAW_MEMORY_FIX),
    "torch.frombuffer": (IMMUTABLE_BUFFER, RAW_MEMORY_FIX),
    "torch.asarray": (IMMUTABLE_BUFFER, "use torch.tensor or torch.as_tensor"),
    "numpy.frombuffer": (IMMUTABLE_BUFFER, "use np.array or np.asarray"),
    "torch.cuda.caching_allocator_alloc": (ADDRESS, RAW_MEMORY_FIX),
    "torch.cuda.caching_allocator_delete": ("frees the memory at any address, which tensors may still use",
                                            RAW_MEMORY_FIX),
    "torch.cuda.ExternalStream": ("takes a raw stream address", "use torch.cuda.Stream(device, priority)"),
    "torch.cuda.get_stream_from_external": ("takes a raw stream address", "use torch.cuda.Stream(device, priority)"),
    "torch.sparse_coo_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_csr_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_csc_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_bsr_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_bsc_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_compressed_tensor": (SPARSE, SPARSE_FIX),
    "torch.sparse_coo": (SPARSE, SPARSE_FIX),  # layouts: `torch.zeros(..., layout=torch.sparse_coo)`
    "torch.sparse_csr": (SPARSE, SPARSE_FIX),
    "torch.sparse_csc": (SPARSE, SPARSE_FIX),
    "torch.sparse_bsr": (SPARSE, SPARSE_FIX),
    "torch.sparse_bsc": (SPARSE, SPARSE_FIX),
    "torch.jagged": ("makes a nested tensor, whose offsets torch does not check", SPARSE_FIX),
}
# Public ops whose memory safety rests on offsets, lengths or indices torch does not check, by the
# stem of their name: the op itself, its private variants (`_embedding_bag_forward_only`) and the
# same name on any object. (reason, fix); measured on torch 2.13 (CPU), see the docstring.
SEGMENT_REDUCE = (
    "reads its data at offsets and lengths torch does not check against the data's size: offsets before "
    "the start read another storage and its backward writes there, offsets past the end crash the process"
)
SEGMENT_FIX = (
    "reduce segments through checked indices: make segment ids (torch.repeat_interleave(torch.arange(n), lengths)) "
    "and use index_add_, scatter_add or scatter_reduce, or torch.bincount(ids, weights=x) for sums"
)
EMBEDDING_BAG = (
    "indexes its input at bag offsets torch does not check: a negative offset reads indices from before the "
    "input's storage (torch.embedding_bag then crashes the process)"
)
EMBEDDING_BAG_FIX = (
    "use F.embedding or nn.Embedding, which check every index, and reduce each bag with sum, mean or amax over a "
    "dimension (or index_select followed by index_add_)"
)
# Every private name in torch is refused (namespaces.py); for the ops among them, this is why.
PRIVATE_TORCH = (
    "torch keeps its native bindings (_C) and the unchecked variants of its public ops there (_unsafe_index, "
    "_embedding_bag, _nested_* from raw buffers, _sparse_* without invariant checks), which skip the checks "
    "the public ops make"
)
PRIVATE_TORCH_FIX = (
    "use the public op, which checks its arguments: indexing or index_select for _unsafe_index, F.embedding "
    "for _embedding_bag, scatter_add or index_add_ for segment sums; the allowed namespaces are those of "
    "torch, torch.nn, torch.optim, torch.linalg, torch.fft, torch.special, torch.autograd, torch.amp, "
    "torch.cuda, torch.func, torch.distributions, numpy, math and typing, by their public names"
)
UNSAFE = "skips a check that the safe version of the op makes (torch names such ops `unsafe`)"
UNSAFE_FIX = "use the checked op: chunk, split, split_with_sizes, indexing, index_select, index_put_"
CTC_LOSS = (
    "reads its log-probabilities at the class indices in `targets`, which torch does not check: a target of "
    "-100000 reads memory before the tensor (measured: no error, a loss made of whatever lay there)"
)
CTC_LOSS_FIX = "use F.cross_entropy or F.nll_loss, which check every target against the number of classes"
UNCHECKED_INDEX_STEMS: dict[str, tuple[str, str]] = {
    "segment_reduce": (SEGMENT_REDUCE, SEGMENT_FIX),
    "embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "ctc_loss": (CTC_LOSS, CTC_LOSS_FIX),
    "unsafe": (UNSAFE, UNSAFE_FIX),
}
# The public ops of that kind in the installed torch, refused by identity under any alias
# (tests/test_static_check_raw_memory.py checks that every public name with a stem is listed).
UNCHECKED_INDEX_OPS: dict[str, tuple[str, str]] = {
    "torch.segment_reduce": (SEGMENT_REDUCE, SEGMENT_FIX),
    "torch.embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "torch.nn.functional.embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "torch.nn.EmbeddingBag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "torch.ctc_loss": (CTC_LOSS, CTC_LOSS_FIX),
    "torch.miopen_ctc_loss": (CTC_LOSS, CTC_LOSS_FIX),
    "torch.nn.functional.ctc_loss": (CTC_LOSS, CTC_LOSS_FIX),
    "torch.nn.CTCLoss": (CTC_LOSS, CTC_LOSS_FIX),
    "torch.unsafe_chunk": (UNSAFE, UNSAFE_FIX),
    "torch.unsafe_split": (UNSAFE, UNSAFE_FIX),
    "torch.unsafe_split_with_sizes": (UNSAFE, UNSAFE_FIX),
    "torch.Tensor.unsafe_chunk": (UNSAFE, UNSAFE_FIX),
    "torch.Tensor.unsafe_split": (UNSAFE, UNSAFE_FIX),
    "torch.Tensor.unsafe_split_with_sizes": (UNSAFE, UNSAFE_FIX),
}
RAW_MEMORY_OBJECTS |= UNCHECKED_INDEX_OPS


def unchecked_index_op(name: str) -> tuple[str, str] | None:
    """(reason, fix) for a name, on any object, of an op with unchecked offsets or indices; else None.

    Compared without case and underscores, so that the class (`EmbeddingBag`) matches as the function does.
    """
    flat = name.lower().replace("_", "")
    for stem, entry in UNCHECKED_INDEX_STEMS.items():
        if stem.replace("_", "") in flat:
            return entry
    return None


# Every public op that addresses memory through an integer tensor argument, reviewed. torch's own
# operator schemas (torch._C._jit_get_all_schemas) name each op's arguments; an op with an input
# named as an address (INDEX_ARGUMENT: index, indices, offsets, lengths, batch_sizes, sorter,
# pivots, targets, counts) or a storage_offset reads and writes memory at values the component
# chooses, and is safe only where torch checks those values. Each such op among the public names
# of INDEX_OWNERS is refused (the tables above, or REVIEWED_REFUSED_INDEX_OPS) or listed in
# CHECKED_INDEX_OPS with what showed that torch checks it. An op that is neither (one a newer
# torch adds) is refused as unreviewed, and tests/test_static_check_raw_memory.py names it, so
# that someone measures it and files it on one side.
INDEX_ARGUMENT = re.compile(r"(?:^|_)(?:index|indices|offsets?|lengths?|batch_sizes|sorter|pivots|targets?|counts)$")
# Where public ops live, with the prefix their schema names carry (`torch.linalg.lu_solve` is linalg_lu_solve).
INDEX_OWNERS: dict[str, str] = {
    "torch": "", "torch.Tensor": "", "torch.nn.functional": "", "torch.linalg": "linalg_", "torch.special": "special_",
    "torch.fft": "fft_",
}

CHECKED = "measured on torch 2.13 (CPU): an index out of range raises; the CUDA kernels assert on it"
VALUE_TARGET = "its target holds values compared with the input, not addresses"
CHECKED_INDEX_OPS: dict[str, str] = {
    **dict.fromkeys((
        "embedding", "embedding_renorm_", "gather", "index", "index_add", "index_add_", "index_copy", "index_copy_",
        "index_fill", "index_fill_", "index_put", "index_put_", "index_reduce", "index_reduce_", "index_select",
        "put", "put_", "take", "take_along_dim", "scatter", "scatter_", "scatter_add", "scatter_add_",
        "scatter_reduce", "scatter_reduce_", "max_unpool2d", "max_unpool3d", "nll_loss", "multi_margin_loss",
        "multilabel_margin_loss"), CHECKED),
    "searchsorted": "the sorter's range is checked before any kernel runs (searchsorted_pre_check, every device)",
    "lu_solve": "the pivots are checked against the matrix size (measured: RuntimeError)",
    "lu_unpack": "the pivots are checked against the matrix size (measured: RuntimeError)",
    "linalg_lu_solve": "the pivots are checked against the matrix size (measured: RuntimeError)",
    "linalg_ldl_solve": "the pivots are checked against the matrix size (measured: RuntimeError)",
    **dict.fromkeys((
        "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss", "hinge_embedding_loss",
        "huber_loss", "kl_div", "l1_loss", "margin_ranking_loss", "mse_loss", "poisson_nll_loss", "smooth_l1_loss",
        "soft_margin_loss"), VALUE_TARGET),
}
RNN_KERNEL = (
    "is a raw recurrent kernel that trusts the packed batch sizes (batch_sizes) nn.LSTM, nn.GRU and nn.RNN "
    "compute themselves; it is not among the ops reviewed as checking them"
)
RNN_FIX = "use nn.LSTM, nn.GRU or nn.RNN on a padded batch"
# Public ops with address arguments refused on review without a measurement: backend kernels that
# the public layers call with arguments they compute themselves; no component needs them.
REVIEWED_REFUSED_INDEX_OPS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("lstm", "gru", "rnn_tanh", "rnn_relu", "quantized_lstm", "quantized_gru"), (RNN_KERNEL, RNN_FIX)),
    **dict.fromkeys(("fbgemm_linear_int8_weight", "fbgemm_linear_int8_weight_fp32_activation"), (
        "is fbgemm's quantized kernel, which takes column offsets (col_offsets) for a packed weight it trusts",
        "use F.linear or nn.Linear")),
    "batch_norm_gather_stats_with_counts": (
        "is SyncBatchNorm's kernel, which takes per-process element counts it trusts",
        "use F.batch_norm or nn.BatchNorm2d"),
}
UNREVIEWED_INDEX_FIX = (
    "use the checked indexing ops (t[idx], index_select, gather, scatter_add, index_add_, F.embedding); if this "
    "op is needed, measure whether torch checks its arguments and list it in raw_memory.py"
)


@cache
def schema_index_ops() -> dict[str, tuple[str, ...]]:
    """Public aten op name -> its address arguments, for every op of the installed torch that has any."""
    found: dict[str, set[str]] = {}
    for schema in torch._C._jit_get_all_schemas():
        op = schema.name.removeprefix("aten::")
        if op == schema.name or op.startswith("_"):
            continue  # other namespaces are reached through torch.ops only; private names are refused
        for argument in schema.arguments:
            address = argument.name == "storage_offset" or (
                INDEX_ARGUMENT.search(argument.name) is not None and "Tensor" in str(argument.type))
            if address and not argument.is_out:
                found.setdefault(op, set()).add(argument.name)
    return {op: tuple(sorted(names)) for op, names in found.items()}


def refused_index_op(op: str) -> tuple[str, str] | None:
    """(reason, fix) for an op with address arguments that is refused, on review or as unreviewed; else None.

    The ops refused by the tables above (as_strided, set_, the sparse constructors, the stems)
    keep their own reasons and are not repeated here.
    """
    arguments = schema_index_ops().get(op)
    if arguments is None or op in CHECKED_INDEX_OPS or op in RAW_MEMORY_METHODS or unchecked_index_op(op):
        return None
    if f"torch.{op}" in RAW_MEMORY_OBJECTS:
        return None
    if op in REVIEWED_REFUSED_INDEX_OPS:
        return REVIEWED_REFUSED_INDEX_OPS[op]
    reason = (f"takes {', '.join(arguments)}: integer tensors it reads or writes memory at, and it is not among "
              "the ops reviewed as checking them against the data (raw_memory.py, CHECKED_INDEX_OPS)")
    return reason, UNREVIEWED_INDEX_FIX


# torch's storage classes: a storage wraps raw memory and can be shrunk under a tensor (resize_).
STORAGE_CLASSES = (
    "Storage", "StorageBase", "TypedStorage", "UntypedStorage", "BFloat16Storage", "BoolStorage", "ByteStorage",
    "CharStorage", "ComplexDoubleStorage", "ComplexFloatStorage", "DoubleStorage", "FloatStorage", "HalfStorage",
    "IntStorage", "LongStorage", "QInt32Storage", "QInt8Storage", "QUInt2x4Storage", "QUInt4x2Storage",
    "QUInt8Storage", "ShortStorage",
)
STORAGE_CLASS = (
    "is a raw storage class: its storages can be wrapped in tensors and shrunk under them, so that the "
    "tensors read and write past their end"
)
RAW_MEMORY_OBJECTS |= {f"torch.{name}": (STORAGE_CLASS, RAW_MEMORY_FIX) for name in STORAGE_CLASSES}

# numpy's array classes: called (or subclassed and called) they build an array over a given
# buffer, offset and strides, which torch then writes through even where the buffer is read-only.
RAW_ARRAY_CLASSES = ("numpy.ndarray", "numpy.recarray")
RAW_ARRAY_REASON = "builds an array over a given buffer, offset and strides, which torch writes through"
RAW_ARRAY_FIX = "create arrays with np.zeros, np.empty, np.array or np.asarray (np.ndarray stays fine in annotations)"

# Dunders a component's class may not define: numpy and torch read raw addresses from the
# array protocols, and __getattr__/__getattribute__ answer those lookups unseen.
RAW_MEMORY_DUNDERS: dict[str, str] = {
    "__array_interface__": "hands numpy a raw address to read and write",
    "__array_struct__": "hands numpy a raw address to read and write",
    "__cuda_array_interface__": "hands torch a raw device address to read and write",
    "__dlpack__": "hands torch and numpy a raw memory descriptor",
    "__dlpack_device__": "hands torch and numpy a raw memory descriptor",
    "__buffer__": "exports raw memory through the buffer protocol",
    "__release_buffer__": "exports raw memory through the buffer protocol",
    "__getattr__": "answers attribute lookups the check cannot see, `__array_interface__` among them",
    "__getattribute__": "answers attribute lookups the check cannot see, `__array_interface__` among them",
}
DUNDER_FIX = "remove the method: pass tensors and arrays made by torch and numpy, and name attributes explicitly"

# Where the `sparse` flag of the embedding layers sits among the positional parameters; a
# sparse gradient is a sparse tensor (SPARSE), and a coalesced one hands out its indices.
# (The bag variants are refused whole, UNCHECKED_INDEX_OPS.)
SPARSE_FLAG_POSITIONS: dict[str, int] = {
    "torch.nn.Embedding": 6, "torch.nn.Embedding.from_pretrained": 6, "torch.nn.functional.embedding": 6,
    "torch.embedding": 4,
}
SPARSE_GRADIENT = (
    "may make sparse gradients, whose indices torch does not check: an index past its size reads and "
    "writes outside every storage"
)

# torch.cuda.Stream takes a raw stream address through keywords other than these.
STREAM_CLASSES = ("torch.cuda.Stream", "torch.Stream")
STREAM_KEYWORDS = frozenset({"device", "priority"})


def index_op_name(owner: str, name: str) -> str:
    """The schema name of `owner.name` (`torch.linalg`, `lu_solve` -> linalg_lu_solve)."""
    return INDEX_OWNERS.get(owner, "") + name
