"""The built-in mutator's edit operators, by component.

Each operator is a family of small program transformations (one module each, named after it);
OPERATORS says which apply to which component. `constant` and `choice` apply to every component
(numbers and ALTERNATIVES exist everywhere); the others follow the component's job. The mutator
(mutator.py) picks among them, skipping edits that cannot take effect.
"""

from evolve.config import MutatorSettings
from evolve.search.operators.constants import Constants
from evolve.search.operators.cutout import Cutout
from evolve.search.operators.edit import Edit, Operator, Tree
from evolve.search.operators.flags import Flags
from evolve.search.operators.layers import Activation, Pooling
from evolve.search.operators.newton_schulz_iteration import IterationCount, IterationDtype
from evolve.search.operators.optimizer_update import MomentumForm, NesterovForm, OrthogonalizeSteps, UpdateScale
from evolve.search.operators.padding import PaddingMode
from evolve.search.operators.tta_views import TtaView

__all__ = ["OPERATORS", "Edit", "Operator", "Tree", "operators_for"]

# Component -> the operators beyond `constant` and `choice`.
OPERATORS: dict[str, tuple[type, ...]] = {
    "optimizer": (MomentumForm, NesterovForm, UpdateScale, OrthogonalizeSteps, Flags),
    "newton_schulz": (IterationCount, IterationDtype),
    "architecture": (Activation, Pooling, Flags),
    "augmentation": (Cutout, PaddingMode),
    "tta": (TtaView, PaddingMode),
    "hyperparams": (),
}


def operators_for(component: str, settings: MutatorSettings) -> list[Operator]:
    """`constant`, `choice`, then the component's own operators."""
    own = [kind() for kind in OPERATORS.get(component, ())]
    return [Constants("number", settings), Constants("choice", settings), *own]
