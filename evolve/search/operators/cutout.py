"""`cutout`: mask one random square of every training image, or stop masking.

Adds a `cutout(images, size)` function to the module (once) and wraps the images a batch
stream yields (`yield images[idxs], labels[idxs]` -> `yield cutout(images[idxs], size=8), ...`);
on a stream that already masks, the edit unwraps it again. The square's size is a keyword
argument, so the constant operator tunes it afterwards.
"""

import libcst as cst
import numpy as np

from evolve.search.operators.edit import Edit, Tree, dotted

FUNCTION = "cutout"
DEFAULT_SIZE = 8
FUNCTION_SOURCE = '''

def cutout(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero one random size x size square of each image (cutout): a masking augmentation."""
    n, _, h, w = images.shape
    size = min(size, h, w)
    top = torch.randint(0, h - size + 1, (n, 1, 1), device=images.device)
    left = torch.randint(0, w - size + 1, (n, 1, 1), device=images.device)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return images.masked_fill(inside.unsqueeze(1), 0)
'''


def _with_blank_lines(body: tuple) -> list:
    """The appended function two blank lines below the code above it (libcst drops a module's leading lines)."""
    first, *rest = body
    return [first.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]), *rest]


def _is_cutout(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Call) and dotted(node.func) == FUNCTION


class Cutout:
    name = "cutout"

    def edits(self, tree: Tree, rng: np.random.Generator) -> list[Edit]:
        has_function = any(isinstance(s, cst.FunctionDef) and s.name.value == FUNCTION for s in tree.module.body)
        found = []
        for yielded in tree.find(cst.Yield, lambda y: isinstance(y.value, cst.Tuple) and len(y.value.elements) == 2):
            images = yielded.value.elements[0].value
            if _is_cutout(images):
                new_images = images.args[0].value
                uses = len(tree.find(cst.Call, lambda c: dotted(c.func) == FUNCTION))
                module = None if uses > 1 else tree.module.with_changes(  # the last use: the function goes too
                    body=[s for s in tree.module.body if not (isinstance(s, cst.FunctionDef) and s.name.value == FUNCTION)])
            elif isinstance(images, cst.Subscript):
                new_images = cst.Call(cst.Name(FUNCTION), [
                    cst.Arg(images, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                    cst.Arg(cst.Integer(str(DEFAULT_SIZE)), keyword=cst.Name("size"),
                            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))),
                ])
                module = None if has_function else tree.module.with_changes(
                    body=[*tree.module.body, *_with_blank_lines(cst.parse_module(FUNCTION_SOURCE).body)])
            else:
                continue
            found.append(tree.replace(self.name, images, new_images, f"{tree.scope(yielded)}: yielded images", module=module))
        return found
