"""A candidate's identity: the hash of its whole component set and of the harness settings that
change what that set does.

A candidate *is* its set: with several components evolving, the same hyperparameters over two
different architectures are two programs, and the same set trained at another scale, on other
data or compiled otherwise behaves differently. The loop stores this identity with every
candidate, and a proposal whose identity is known is a duplicate, never evaluated twice.
"""

import hashlib
import json
from collections.abc import Mapping

from evaluator.settings import HarnessSettings
from evolve.database.canonical import source_hash


def behaviour_settings(harness: HarnessSettings) -> dict:
    """The harness settings that change a set's behaviour (not the seed, which only draws runs)."""
    return {
        "device": harness.device,
        "data": harness.data,
        "compile": harness.effective_compile(),
        "hyperparams": dict(sorted(harness.effective_overrides().items())),
    }


def set_identity(sources: Mapping[str, str], harness: HarnessSettings) -> str:
    """sha256 over each component's canonical source (comments and docstrings do not count) and
    the behaviour settings."""
    payload = {
        "components": {name: source_hash(sources[name]) for name in sorted(sources)},
        "harness": behaviour_settings(harness),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
