"""`activation` and `pooling`: swap one layer or functional call for another of its family.

A swap keeps the call's input and the arguments both members share; those the new member does
not take are dropped (an activation's `inplace=`, max pooling's `dilation=`), so the child always
constructs. Each use of a layer is a separate site, so one ConvGroup's activation can change
without the stem's.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, dotted

ACTIVATION_LAYERS = ("GELU", "ReLU", "SiLU", "Mish", "ELU")
ACTIVATION_FUNCTIONS = ("gelu", "relu", "silu", "mish", "elu")
# Pooling layer or function -> the one it becomes, and the arguments the two share (by keyword).
POOLING = {
    "MaxPool2d": ("AvgPool2d", {"kernel_size", "stride", "padding", "ceil_mode"}),
    "AvgPool2d": ("MaxPool2d", {"kernel_size", "stride", "padding", "ceil_mode"}),
    "max_pool2d": ("avg_pool2d", {"input", "kernel_size", "stride", "padding", "ceil_mode"}),
    "avg_pool2d": ("max_pool2d", {"input", "kernel_size", "stride", "padding", "ceil_mode"}),
}
POSITIONAL_SHARED = {"MaxPool2d": 3, "AvgPool2d": 3, "max_pool2d": 4, "avg_pool2d": 4}  # kernel, stride, padding (+ input)


def _renamed(func: cst.BaseExpression, name: str) -> cst.BaseExpression:
    return func.with_changes(attr=cst.Name(name)) if isinstance(func, cst.Attribute) else cst.Name(name)


def _last(func: cst.BaseExpression) -> str | None:
    path = dotted(func)
    return None if path is None else path.rsplit(".", 1)[-1]


class Activation:
    name = "activation"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: _last(c.func) in ACTIVATION_LAYERS + ACTIVATION_FUNCTIONS):
            current = _last(call.func)
            family = ACTIVATION_LAYERS if current in ACTIVATION_LAYERS else ACTIVATION_FUNCTIONS
            if current in ACTIVATION_FUNCTIONS and not call.args:
                continue
            others = [a for a in family if a != current]
            new_name = others[int(rng.integers(len(others)))]
            args = [] if family is ACTIVATION_LAYERS else [call.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
            new = call.with_changes(func=_renamed(call.func, new_name), args=args)
            found.append(tree.replace(self.name, call, new, f"{tree.scope(call)}: {dotted(call.func)}"))
        return found


class Pooling:
    name = "pooling"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: _last(c.func) in POOLING):
            current = _last(call.func)
            target, shared = POOLING[current]
            positional = [a for a in call.args if a.keyword is None][: POSITIONAL_SHARED[current]]
            keywords = [a for a in call.args if a.keyword is not None and a.keyword.value in shared]
            args = [*positional, *keywords]
            if not args:
                continue
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            new = call.with_changes(func=_renamed(call.func, target), args=args)
            found.append(tree.replace(self.name, call, new, f"{tree.scope(call)}: {dotted(call.func)}"))
        return found
