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
"""

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
    "storage_type": ("hands out a raw storage class, whose storages can be wrapped in tensors and shrunk "
                     "under them", RAW_MEMORY_FIX),
    "data_ptr": (ADDRESS, RAW_MEMORY_FIX),
    "const_data_ptr": (ADDRESS, RAW_MEMORY_FIX),
    "resize": ("frees memory that views of the array still read and write (numpy's ndarray.resize with "
               "refcheck=False)", "use reshape, or np.resize and torch's resize_, which copy or grow"),
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
UNSAFE = "skips a check that the safe version of the op makes (torch names such ops `unsafe`)"
UNSAFE_FIX = "use the checked op: chunk, split, split_with_sizes, indexing, index_select, index_put_"
UNCHECKED_INDEX_STEMS: dict[str, tuple[str, str]] = {
    "segment_reduce": (SEGMENT_REDUCE, SEGMENT_FIX),
    "embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "unsafe": (UNSAFE, UNSAFE_FIX),
}
# The public ops of that kind in the installed torch, refused by identity under any alias
# (tests/test_static_check_raw_memory.py checks that every public name with a stem is listed).
UNCHECKED_INDEX_OPS: dict[str, tuple[str, str]] = {
    "torch.segment_reduce": (SEGMENT_REDUCE, SEGMENT_FIX),
    "torch.embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "torch.nn.functional.embedding_bag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
    "torch.nn.EmbeddingBag": (EMBEDDING_BAG, EMBEDDING_BAG_FIX),
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
