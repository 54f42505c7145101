"""The Newton-Schulz iteration itself: how many times the loop runs, and in which dtype.

- `iteration_count`: `for _ in range(steps)` runs one more or one fewer time (`steps + 1`,
  `steps - 1`), whatever the caller asks for: more iterations orthogonalise further at the cost
  of three matrix products each.
- `iteration_dtype`: the working copy in bfloat16 (`G.bfloat16()`) or float32 (`G.float()`):
  precision against speed, differently on each device.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, shifted

DTYPE_SWAP = {"bfloat16": "float", "float": "bfloat16", "half": "float"}


class IterationCount:
    name = "iteration_count"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for loop in tree.find(cst.For):
            it = loop.iter
            if not (isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "range" and len(it.args) == 1):
                continue
            count = it.args[0].value
            if isinstance(count, cst.Integer) and int(count.value) <= 1:
                delta = 1
            else:
                delta = 1 if rng.random() < 0.5 else -1
            new = it.with_changes(args=[it.args[0].with_changes(value=shifted(count, delta))])
            found.append(tree.replace(self.name, it, new, f"{tree.scope(loop)}: range"))
        return found


class IterationDtype:
    name = "iteration_dtype"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: isinstance(c.func, cst.Attribute) and c.func.attr.value in DTYPE_SWAP
                              and not c.args):
            new = call.with_changes(func=call.func.with_changes(attr=cst.Name(DTYPE_SWAP[call.func.attr.value])))
            found.append(tree.replace(self.name, call, new))
        return found
