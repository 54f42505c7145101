"""`flag`: switch a boolean setting that changes what the code does.

Only keyword arguments whose meaning is a behaviour switch (FLAG_KEYWORDS: Nesterov momentum,
batch norm's affine scale and running statistics, pooling's rounding) and assignments to
`.requires_grad` (whether a parameter trains). Other booleans (`bias=`, `inplace=`, `keepdim=`)
change shapes, memory or nothing, so they are left alone.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, dotted

FLAG_KEYWORDS = frozenset({"nesterov", "affine", "track_running_stats", "ceil_mode", "count_include_pad", "align_corners", "antialias"})


def _flipped(value: cst.BaseExpression) -> cst.Name | None:
    if isinstance(value, cst.Name) and value.value in ("True", "False"):
        return cst.Name("False" if value.value == "True" else "True")
    return None


class Flags:
    name = "flag"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call):
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value in FLAG_KEYWORDS and (new := _flipped(arg.value)):
                    what = f"{tree.scope(arg)}: {dotted(call.func) or 'call'}({arg.keyword.value}=)"
                    found.append(tree.replace(self.name, arg.value, new, what))
        for assign in tree.find(cst.Assign):
            target = assign.targets[0].target if len(assign.targets) == 1 else None
            if isinstance(target, cst.Attribute) and target.attr.value == "requires_grad" and (new := _flipped(assign.value)):
                what = f"{tree.scope(assign)}: {dotted(target) or 'requires_grad'}"
                found.append(tree.replace(self.name, assign.value, new, what))
        return found
