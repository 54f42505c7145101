"""What an optimizer's update does: momentum form, Nesterov form, update scale, Newton-Schulz steps.

- `momentum_form`: the buffer as a sum, `buf.mul_(m).add_(g)`, or as an average,
  `buf.lerp_(g, 1 - m)` (the gradient then enters scaled by 1 - m: another effective step size
  and another balance of old and new gradients).
- `nesterov_form`: the look-ahead `g.add(buf, alpha=m)` or its average `g.lerp(buf, m)` (also
  in the list form, `torch._foreach_add(gs, bufs, alpha=m)` <-> `torch._foreach_lerp(gs, bufs, m)`).
- `update_scale`: the orthogonalized update as it is, or scaled by sqrt(rows / columns) of the
  weight's matrix, the shape rule of Muon variants (narrow layers step less than wide ones).
- `orthogonalize_steps`: the Newton-Schulz iterations the optimizer actually asks for at the
  call, one more or one fewer (`steps + 1`, `steps - 1`): a default of the orthogonalizer is
  dead when the caller passes its own, this is the count that runs.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, dotted, expression, keyword, shifted

SCALE_MARK = "numel()) ** 0.5"  # how update_scale recognises its own factor, to undo it


def _method(call: cst.Call, name: str) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == name


def _code(tree: Tree, node: cst.CSTNode) -> str:
    return tree.module.code_for_node(node)


def _arg(value: str, keyword_name: str | None = None) -> cst.Arg:
    if keyword_name is None:
        return cst.Arg(expression(value))
    return cst.Arg(expression(value), keyword=cst.Name(keyword_name),
                   equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))


class MomentumForm:
    name = "momentum_form"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: _method(c, "add_") or _method(c, "lerp_")):
            receiver = call.func.value
            if _method(call, "add_") and isinstance(receiver, cst.Call) and _method(receiver, "mul_"):
                # buf.mul_(m).add_(g) -> buf.lerp_(g, 1 - m)
                if len(receiver.args) != 1 or len(call.args) != 1 or call.args[0].keyword is not None:
                    continue
                buf, m, g = receiver.func.value, receiver.args[0].value, call.args[0].value
                new = expression(f"{_code(tree, buf)}.lerp_({_code(tree, g)}, 1 - {_code(tree, m)})")
            elif _method(call, "lerp_") and len(call.args) == 2:
                # buf.lerp_(g, 1 - m) -> buf.mul_(m).add_(g)
                weight = call.args[1].value
                if not (isinstance(weight, cst.BinaryOperation) and isinstance(weight.operator, cst.Subtract)
                        and isinstance(weight.left, cst.Integer) and weight.left.value == "1"):
                    continue
                buf, g, m = receiver, call.args[0].value, weight.right
                new = expression(f"{_code(tree, buf)}.mul_({_code(tree, m)}).add_({_code(tree, g)})")
            else:
                continue
            found.append(tree.replace(self.name, call, new))
        return found


class NesterovForm:
    name = "nesterov_form"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: _method(c, "add") or _method(c, "lerp")
                              or dotted(c.func) in ("torch._foreach_add", "torch._foreach_lerp")):
            if dotted(call.func) in ("torch._foreach_add", "torch._foreach_lerp"):
                found += self._foreach(tree, call)
                continue
            receiver = call.func.value
            alpha = keyword(call, "alpha")
            positional = [a for a in call.args if a.keyword is None]
            if _method(call, "add") and alpha is not None and len(call.args) == 2 and len(positional) == 1:
                # g.add(buf, alpha=m) -> g.lerp(buf, m)
                new = expression(f"{_code(tree, receiver)}.lerp({_code(tree, positional[0].value)}, {_code(tree, alpha.value)})")
            elif _method(call, "lerp") and len(call.args) == 2 and len(positional) == 2:
                new = expression(f"{_code(tree, receiver)}.add({_code(tree, positional[0].value)}, alpha={_code(tree, positional[1].value)})")
            else:
                continue
            found.append(tree.replace(self.name, call, new))
        return found


    def _foreach(self, tree: Tree, call: cst.Call) -> list[Edit]:
        """The list form: torch._foreach_add(gs, bufs, alpha=m) <-> torch._foreach_lerp(gs, bufs, m)."""
        positional = [_code(tree, a.value) for a in call.args if a.keyword is None]
        alpha = keyword(call, "alpha")
        if dotted(call.func) == "torch._foreach_add" and alpha is not None and len(positional) == 2:
            new = expression(f"torch._foreach_lerp({positional[0]}, {positional[1]}, {_code(tree, alpha.value)})")
        elif dotted(call.func) == "torch._foreach_lerp" and len(positional) == 3 and len(call.args) == 3:
            new = expression(f"torch._foreach_add({positional[0]}, {positional[1]}, alpha={positional[2]})")
        else:
            return []
        return [tree.replace(self.name, call, new)]


class UpdateScale:
    name = "update_scale"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: _method(c, "add_") and keyword(c, "alpha") is not None):
            receiver, update = call.func.value, call.args[0]
            if update.keyword is not None or not isinstance(receiver, (cst.Name, cst.Attribute)):
                continue
            text, weight = _code(tree, update.value), _code(tree, receiver)
            if isinstance(update.value, cst.BinaryOperation) and SCALE_MARK in _code(tree, update.value.right):
                scaled = update.value.left  # undo: the update as it was
            else:
                scaled = expression(f"{text} * (len({weight}) / {weight}[0].numel()) ** 0.5")
            new = call.with_changes(args=[update.with_changes(value=scaled), *call.args[1:]])
            found.append(tree.replace(self.name, call, new))
        return found


class OrthogonalizeSteps:
    name = "orthogonalize_steps"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        found = []
        for call in tree.find(cst.Call, lambda c: (isinstance(c.func, (cst.Name, cst.Attribute)) and
                                                  (c.func.value if isinstance(c.func, cst.Name) else c.func.attr.value) == "orthogonalize")):
            steps = keyword(call, "steps")
            if steps is None:
                positional = [a for a in call.args if a.keyword is None]
                steps = positional[1] if len(positional) > 1 else None
            if steps is None:
                continue
            delta = 1 if rng.random() < 0.5 else -1
            if isinstance(steps.value, cst.Integer) and int(steps.value.value) + delta < 1:
                delta = 1
            new = shifted(steps.value, delta)
            found.append(tree.replace(self.name, steps.value, new, f"{tree.scope(call)}: orthogonalize(steps)"))
        return found
