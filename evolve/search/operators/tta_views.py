"""`tta_view`: predict from fewer test-time views (each view is one more forward pass).

- a weighted sum of two views, `0.5 * model(x) + 0.5 * model(x.flip(-1))`, keeps one of them
  (its weight dropped: logits are ranked, so the scale does not matter);
- a list of views averaged by a comprehension (`shifted = [a, b]` with `for s in shifted`), or
  extended inside a function (`copies += [a, b]`), loses one element.
Each is a separate site; which view goes is drawn.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree


def _weighted(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """X for `w * X` with a literal weight w, else None."""
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply) and isinstance(node.left, (cst.Float, cst.Integer)):
        return node.right
    return None


class TtaView:
    name = "tta_view"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for total in tree.find(cst.BinaryOperation, lambda b: isinstance(b.operator, cst.Add)):
            left, right = _weighted(total.left), _weighted(total.right)
            if left is None or right is None:
                continue
            keep = left if rng.random() < 0.5 else right
            found.append(tree.replace(self.name, total, keep.with_changes(lpar=[], rpar=[]), f"{tree.scope(total)}: weighted views"))
        iterated = {loop.iter.value for loop in tree.find(cst.CompFor) if isinstance(loop.iter, cst.Name)}
        lists = tree.find((cst.Assign, cst.AugAssign), lambda a: isinstance(a.value, cst.List) and len(a.value.elements) >= 2)
        for assign in lists:
            if isinstance(assign, cst.AugAssign):
                target = assign.target if isinstance(assign.operator, cst.AddAssign) else None
            else:
                target = assign.targets[0].target if len(assign.targets) == 1 else None
                target = target if isinstance(target, cst.Name) and target.value in iterated else None
            if not isinstance(target, cst.Name) or tree.scope(assign) == "module":
                continue
            elements = list(assign.value.elements)
            drop = int(rng.integers(len(elements)))
            kept = [e for i, e in enumerate(elements) if i != drop]
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            found.append(tree.replace(self.name, assign.value, assign.value.with_changes(elements=kept),
                                      f"{tree.scope(assign)}: views in {target.value}"))
        return found
