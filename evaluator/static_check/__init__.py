"""Static check of a candidate component's source text, before the evaluator executes any of it.

A candidate component is Python written by an untrusted model, and the harness runs it in its own
process. Whatever the text can reach (files such as the test labels, other processes, the clock,
the random seed, the torch functions the harness itself calls) could turn into a fake speedup or
a fake accuracy. The check reads the text with the standard library's `ast`, never running it,
and lists every place where it leaves the contract of components/README.md. Each Violation names
the rule, the line and the fix, so that it can go back to the model as feedback.

A reference is judged by what it really is, not by how it is spelt: names are followed through
aliases and assignments (references.py), then walked through the installed libraries one
attribute at a time (library.py), so that `torch.serialization.os` is the module `os` and
`torch.ops.aten.from_file.default` passes through `torch.ops`, which no component may use.
What a component may reach in torch and numpy is an allowlist (namespaces.py).

The check is a filter, not a boundary. It reads text, so whatever it does not model (an op it
does not know, an object whose type it cannot see) passes it; the kernel-jailed worker
(evaluator/sandbox/jail.py), the runtime guard (evaluator/sandbox/guard.py) and the harness's
resets and one-run-per-worker rule are what a run relies on. The filter is cheap and early: it
turns the known ways out of the contract into feedback, each finding naming the problem and the
fix, before anything runs.

Rules, by the `rule` id a Violation carries (the parts, each in the file named after it):

- syntax: the text must parse (check.py).
- interface: the names of components.interface.REQUIRED_NAMES, with their parameters in order;
  HYPERPARAMS a dict literal of string keys and number or bool values (interface.py).
- import: only torch, numpy, math and typing, absolute, explicit, and only the allowed
  namespaces in them (imports.py, namespaces.py).
- namespace: a reference outside the allowed namespaces: a module not on the allowlist (by its
  real name), a private name, a name the installed library does not have (library.py).
- forbidden-name: builtins and module names that reach files, code execution or the interpreter,
  also as attributes of anything (`np.sys`) (rules.py).
- dunder-access: dunders, frames, tracebacks and generator frames on any object, and `type(x)`
  handed out as a value.
- forbidden-call: references to file, process and native-code APIs, called or not, by identity
  (`torch.load` under any alias or path); computed attribute names on any object (getattr,
  setattr, delattr, hasattr); str.format templates that read attributes.
- module-value: a module used as a value where the check cannot follow it (in a container, as
  an argument or a return value, stored on an object).
- monkeypatch: assigning to, deleting or changing in place anything in torch, numpy, math or
  typing (modules, classes, functions), except the torch.backends flags the harness resets.
- seed: fixing, restoring, forking or moving random state; the harness seeds every run. By name,
  on any object: a name containing "seed", set_state/setstate/set_rng_state*, set_offset,
  set_bit_generator, clone_state, graphsafe_*, fork_rng, spawn, jumped, advance (readers such as
  get_rng_state pass); assignments to `state` and `bit_generator`; generators given a seed,
  torch.Generator at all (torch's fixed default seed), those constructors used other than called
  directly; subclasses of generator classes; `__init__` run again on an object the check cannot
  name. A test enumerates every public attribute of the installed generators and random modules
  and fails on one that is neither refused, a reader nor a reviewed drawing name
  (random_state.py for what and why, random_state_check.py for the syntax; library names in
  library.py).
- global-state: process-wide torch switches the harness does not reset; `global`/`nonlocal`,
  changing a module-level container from a function, and code other than definitions and
  constant assignments at module level (load_time.py, module_state.py).
- raw-memory: whatever reaches memory outside a tensor's or array's own storage: hand-placed
  views (as_strided), storages, addresses (data_ptr, a bit generator's capsule) and the array
  protocols that read them (`def __array_interface__`, `type(n, b, d)`), buffers of immutable
  objects (frombuffer, torch.asarray, np.ndarray(buffer=...)), ndarray.resize, sparse tensors, and
  ops that read or write at offsets, lengths or indices torch does not check: segment_reduce,
  embedding_bag and nn.EmbeddingBag, ctc_loss, their private variants, any name containing
  "unsafe"; beyond those, every public op whose schema takes an index-like tensor is refused
  unless reviewed as checked (raw_memory.CHECKED_INDEX_OPS). Every private torch name and
  torch.ops are refused as namespaces (raw_memory.py for what and why, raw_memory_check.py for the
  syntax; library objects by identity in library.py).
- literal-size: literals too large, one by one or together: room for memorised answers
  (literals.py).
"""

from evaluator.static_check.check import check_source
from evaluator.static_check.violation import Violation

__all__ = ["Violation", "check_source"]
