"""The simulated proposer: thousands of proposals a minute, without an LLM or the built-in mutator's parsing.

The built-in mutator (evolve/search/mutator.py) parses and checks every module it edits: about 6
proposals a second on this project's 2-core machine, which would make it the simulation's
bottleneck. This proposer edits one of a component's `sites_per_component` simulated sites
instead: it sets the line `SIMULATED_SITE_<k> = <value>` of the module (replacing that site's
line where the parent has one, else appending it), so a child keeps its parent's other sites and
their effects, as a mutation keeps the parent's other constants. Whether an edit helps is decided
by the landscape from the new line alone (landscape.py): the chance of a helpful edit is
`landscape.helpful_share`, of a harmful one `harmful_share`, of a broken one `broken_share`.
"""

import re

import numpy as np

from evolve.search.proposer import Proposal, ProposalRequest
from evolve.simulation_settings import SimulationSettings

SITE_PREFIX = "SIMULATED_SITE_"


def set_site(source: str, site: int, value: str) -> str:
    """The module with site `site`'s line set to `value` (replaced in place, or appended)."""
    line = f"{SITE_PREFIX}{site} = {value}  # a simulated edit (evolve/simulation/proposer.py)"
    pattern = re.compile(rf"^{SITE_PREFIX}{site} = .*$", re.MULTILINE)
    if pattern.search(source):
        return pattern.sub(line, source, count=1)
    return source.rstrip("\n") + "\n" + line + "\n"


class SimulatedProposer:
    """One simulated site of the requested component set to a fresh value per proposal."""

    name = "simulated proposer (evolve/simulation: one simulated site per proposal, no LLM)"

    def __init__(self, settings: SimulationSettings, rng: np.random.Generator):
        self.sites, self.rng = settings.sites_per_component, rng

    def propose(self, request: ProposalRequest) -> Proposal:
        site, value = int(self.rng.integers(self.sites)), f"{self.rng.random():.9f}"
        source = set_site(request.parent.source, site, value)
        return Proposal(request=request, source=source, origin="mutator",
                        description=f"simulated edit: {request.component} site {site} = {value}")
