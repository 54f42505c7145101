"""`padding_mode`: how `F.pad` fills the border (reflect, replicate, circular, zeros).

Translate augmentation and shifted test-time views pad before cropping; the fill decides what a
shifted image shows at its edge.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, dotted, keyword

MODES = ("reflect", "replicate", "circular", "constant")


def _mode_arg(call: cst.Call) -> cst.Arg | None:
    named = keyword(call, "mode")
    if named is not None:
        return named
    positional = [a for a in call.args if a.keyword is None]
    return positional[2] if len(positional) > 2 else None


class PaddingMode:
    name = "padding_mode"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: (dotted(c.func) or "").rsplit(".", 1)[-1] == "pad"):
            arg = _mode_arg(call)
            if arg is None or not isinstance(arg.value, cst.SimpleString):
                continue
            current = arg.value.evaluated_value
            if current not in MODES or keyword(call, "value") is not None:
                continue
            others = [m for m in MODES if m != current]
            new = cst.SimpleString(repr(others[int(rng.integers(len(others)))]).replace("'", '"'))
            found.append(tree.replace(self.name, arg.value, new, f"{tree.scope(call)}: {dotted(call.func)}(mode=)"))
        return found
