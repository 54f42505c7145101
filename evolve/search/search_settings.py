"""Settings of the smarter search (issue 19): merges, novelty, the behaviour check, the model bandit."""

from pydantic import BaseModel, ConfigDict, Field


class SearchSettings(BaseModel):
    """`[search]` in the TOML; each part is documented in the module named after it."""

    model_config = ConfigDict(extra="forbid")

    merge_share: float = Field(
        0.2, ge=0, le=1,
        description="share of proposals that are component merges (evolve/search/merge.py), when one is possible; 0: none",
    )
    novelty_threshold: float = Field(
        0.0, ge=0, le=1,
        description="skip a proposal whose normalised distance to a program already evaluated for its component is at most "
        "this (evolve/search/novelty.py); 0: only renamings and reformattings of one",
    )
    novelty_enabled: bool = Field(True, description="compare proposals with what was already evaluated before evaluating them")
    embedding_model: str | None = Field(
        None, description="embeddings model on the configured OpenAI-compatible endpoint; none: the structural distance only"
    )
    embedding_threshold: float = Field(
        0.01, ge=0, le=2, description="with an embedding model: skip a proposal whose cosine distance to one is at most this"
    )
    behaviour_check: bool = Field(
        True, description="skip a child whose changed component behaves exactly like its parent's on the probe inputs"
    )
    bandit: bool = Field(True, description="choose among several [[llm.models]] by a cost-aware bandit (evolve/llm/bandit.py)")
    gpu_usd_per_hour: float = Field(
        3.0, ge=0, description="the bandit's price of device time, to add evaluation cost to LLM cost (USD per GPU-hour)"
    )
    bandit_exploration: float = Field(
        0.1, ge=0, le=1, description="share of the bandit's choices drawn by the fixed weights, to keep learning"
    )
