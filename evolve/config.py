"""The experiment's configuration: one pydantic tree, every field documented.

Values come from three layers, later ones winning (below them all, optionally, a preset from
evolve/presets.py, e.g. `--preset quick`):

1. a TOML file (`--config evolve.toml`; see evolve.example.toml at the repository root),
2. environment variables `EVOLVE_<FIELD>`, nested with `__` (`EVOLVE_LLM__TIMEOUT_SECONDS=60`,
   `EVOLVE_POPULATION__ISLANDS=2`); only variables whose first part names a top-level field are
   read, so unrelated ones such as EVOLVE_CACHE are left alone,
3. command-line flags, passed as dotted keys (`{"llm.timeout_seconds": 60}`, or `--set
   llm.timeout_seconds=60` strings through parse_assignments).

Values given as text (environment, `--set`) are read as TOML literals (`3`, `0.5`, `true`,
`[0, 1]`, `"text"`) where the field is not a string; plain text otherwise. Lists such as `gpus`
and `components` also accept `0,1`. The API key falls back to OPENAI_API_KEY and the endpoint to
OPENAI_BASE_URL when no layer sets them, and the models to EVOLVE_MODEL (names, comma-separated;
`evolve start --model NAME` sets the same). Showing the configuration: config_display.py.

Every problem (unknown key, wrong type, value out of range) becomes one ConfigError that names
the field by its dotted path and the layer the value came from, for example
`llm.models[0].weight: must be greater than 0 (got -1, from evolve.toml)`.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from components import COMPONENT_NAMES, SHIPPED_SETS
from evaluator.settings import CascadeSettings, HarnessSettings, PromotionSettings, ScoreSettings
from evolve.simulation_settings import SimulationSettings

ENV_PREFIX = "EVOLVE_"
MODEL_VARIABLE = "EVOLVE_MODEL"  # like --model: model names, comma-separated, for llm.models
ENV_NESTING = "__"
DEFAULT_LABEL = "default"

Path_ = tuple[str | int, ...]


class ConfigError(ValueError):
    """An invalid configuration; the message names each bad field, its value's layer and the fix."""


class ModelSpec(BaseModel):
    """One model the loop may ask, with its sampling weight and prices."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="model name as the endpoint knows it, e.g. gpt-4.1 or qwen2.5-coder")
    weight: float = Field(1.0, gt=0, description="relative probability of choosing this model for a mutation")
    input_usd_per_million: float = Field(0.0, ge=0, description="price in USD per million prompt tokens")
    output_usd_per_million: float = Field(0.0, ge=0, description="price in USD per million completion tokens")
    temperature: float = Field(0.8, ge=0, le=2, description="sampling temperature")
    max_tokens: int = Field(16384, ge=1, description="most completion tokens per reply")


class LLMSettings(BaseModel):
    """The OpenAI-compatible endpoint. Without models, the built-in mutator replaces the LLM."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint (e.g. http://localhost:8000/v1); default OPENAI_BASE_URL, else OpenAI"
    )
    api_key: SecretStr | None = Field(None, description="API key; default OPENAI_API_KEY; never printed in full")
    models: list[ModelSpec] = Field(
        default_factory=list, description="models to sample from; empty: use the built-in offline mutator"
    )
    timeout_seconds: float = Field(300.0, gt=0, description="timeout of one HTTP attempt, in seconds")
    max_retries: int = Field(3, ge=0, description="retries of the openai client on timeouts, 429 and 5xx (with backoff)")
    concurrent_calls: int = Field(
        4, ge=1, description="LLM calls in flight at once, so that proposals keep up with the evaluation workers"
    )
    fallback_to_mutator: bool = Field(
        True, description="when a call fails or its reply stays unusable after the repair round, let the built-in "
        "mutator make the child instead (stored with origin 'mutator' and the LLM's failure in its description)",
    )
    output_format: Literal["diff", "full", "either"] = Field(
        "diff", description="reply format to ask for: SEARCH/REPLACE blocks, a full module, or either"
    )

    @property
    def enabled(self) -> bool:
        """Whether the loop asks an LLM (otherwise the built-in mutator proposes candidates)."""
        return bool(self.models)

    @model_validator(mode="after")
    def _endpoint_for_models(self) -> "LLMSettings":
        if self.models and self.api_key is None and self.base_url is None:
            raise ValueError(
                "models are configured but there is no endpoint: set OPENAI_API_KEY (or llm.api_key) for OpenAI, "
                "or llm.base_url for a server that needs no key"
            )
        return self


class PopulationSettings(BaseModel):
    """Islands, migration and selection (see evolve/search/population.py for the rules)."""

    model_config = ConfigDict(extra="forbid")

    islands: int = Field(4, ge=1, description="number of islands, each evolving its own sub-population")
    migration_interval: int = Field(5, ge=1, description="generations between migrations of elites to the next island")
    migration_size: int = Field(1, ge=0, description="elites each island sends at a migration")
    elites_per_island: int = Field(5, ge=1, description="best candidates per island kept as elites")
    inspirations: int = Field(3, ge=0, description="other candidates shown to the LLM beside the parent")
    parent_selection: Literal["rank_softmax", "uniform", "best", "seed"] = Field(
        "rank_softmax", description="how a parent is drawn within its island; 'seed': always the seed set, a random "
        "search around the start that never builds on a champion (bench/climb.py's yardstick for what selection adds)"
    )
    selection_temperature: float = Field(
        2.0, gt=0, description="rank_softmax: weight exp(-rank / temperature); lower is greedier"
    )
    random_parent_probability: float = Field(
        0.1, ge=0, le=1, description="chance of drawing the parent uniformly from the island instead, for diversity"
    )


class MutatorSettings(BaseModel):
    """The built-in offline mutator (evolve/search/mutator.py), used when no LLM model is configured."""

    model_config = ConfigDict(extra="forbid")

    float_sigma: float = Field(0.2, gt=0, description="standard deviation of the log-normal factor applied to floats")
    int_sigma: float = Field(0.15, gt=0, description="standard deviation of the relative change of integers")
    changes: int = Field(1, ge=1, description="constants changed per mutation")
    choice_probability: float = Field(
        0.3, ge=0, le=1, description="chance of switching a listed ALTERNATIVES choice rather than a number"
    )


class RaySettings(BaseModel):
    """The Ray cluster that runs the evaluations when `executor = "ray"` (evolve/search/ray_executor.py)."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="cluster to use: HOST:PORT of the head (as `ray start --head` prints it), 'auto' (the cluster this "
        "machine has joined) or ray://HOST:10001 (Ray Client); none: a one-machine Ray started for this search",
    )
    max_retries: int = Field(
        2, ge=0, description="re-submissions of a job whose Ray worker process or node died; then it is recorded as failed"
    )
    cpus_per_task: float = Field(
        1.0, gt=0, description="CPUs one job reserves: its whole slot on a CPU cluster, beside its one GPU on a GPU cluster"
    )
    slots: int | None = Field(
        None, ge=1, description="jobs in flight at once; none: one per GPU in the cluster (per cpus_per_task CPUs with "
        "harness.device = cpu), following nodes as they join and leave",
    )
    connect_timeout_seconds: float = Field(15.0, gt=0, description="how long to try the address before the search stops with an error")
    cancel_grace_seconds: float = Field(
        10.0, ge=0, description="after Ctrl-C, how long cancelled jobs get to stop their sandboxed workers before Ray kills them"
    )


class SearchSettings(BaseModel):
    """How proposals are chosen and filtered: component merges, the novelty and behaviour checks that skip
    near-copies before evaluation, and the cost-aware bandit over several LLM models (`[search]` in the TOML;
    each part is documented in the module named after it)."""

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


class ExperimentConfig(BaseModel):
    """Everything an evolution experiment needs; `evolve config show` prints it with sources."""

    model_config = ConfigDict(extra="forbid")

    components: list[str] = Field(
        default_factory=lambda: list(COMPONENT_NAMES),
        description=f"components to evolve; 'all' means {', '.join(COMPONENT_NAMES)}",
    )
    seed_set: str = Field(
        "baseline", description=f"component set the search starts from: a shipped one ({', '.join(SHIPPED_SETS)}) or a folder "
        "of component modules (made absolute; the modules it lacks are the baseline's); stored in full with the experiment",
    )
    generations: int = Field(20, ge=1, description="generations to run")
    candidates_per_generation: int = Field(4, ge=1, description="candidates proposed and evaluated per generation")
    budget_gpu_hours: float | None = Field(None, gt=0, description="stop after this much GPU time; none: no limit")
    budget_usd: float | None = Field(None, ge=0, description="stop after this much LLM spending in USD; none: no limit")
    gpus: list[int] = Field(
        default_factory=lambda: [0], min_length=1, description="CUDA device indices to evaluate on (local executor)"
    )
    executor: Literal["local", "ray", "simulated"] = Field(
        "local", description="where evaluations run: local (this machine, one worker per GPU in `gpus`), ray (a Ray "
        "cluster, see `ray`; needs `pip install -e '.[ray]'`) or simulated (nothing runs: times and accuracies drawn from "
        "a stated landscape and noise model, see `simulation` and evolve/simulation; for studying the search itself)",
    )
    ray: RaySettings = Field(default_factory=RaySettings, description="the Ray cluster (executor = ray)")
    simulation: SimulationSettings = Field(
        default_factory=SimulationSettings, description="the simulated executor's landscape, noise and costs (executor = simulated)"
    )
    database_url: str = Field("sqlite:///evolve.db", description="SQLAlchemy URL of the lineage database")
    prompts_dir: Path | None = Field(None, description="folder of prompt templates; none: the shipped prompts/")
    seed: int | None = Field(None, description="seed of the loop's random choices; none: fresh")
    harness: HarnessSettings = Field(default_factory=HarnessSettings, description="how candidates are trained")
    score: ScoreSettings = Field(default_factory=ScoreSettings, description="how runs are scored")
    cascade: CascadeSettings = Field(default_factory=CascadeSettings, description="the evaluation cascade")
    promotion: PromotionSettings = Field(
        default_factory=PromotionSettings, description="the paired re-measurement a candidate must pass to become champion"
    )
    llm: LLMSettings = Field(default_factory=LLMSettings, description="the LLM endpoint and models")
    population: PopulationSettings = Field(default_factory=PopulationSettings, description="islands and selection")
    mutator: MutatorSettings = Field(default_factory=MutatorSettings, description="the built-in offline mutator")
    search: SearchSettings = Field(
        default_factory=SearchSettings, description="merges, novelty and behaviour checks, the model bandit"
    )

    @field_validator("components", "gpus", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: list[str]) -> list[str]:
        if "all" in value:
            return list(COMPONENT_NAMES)
        unknown = [name for name in value if name not in COMPONENT_NAMES]
        if unknown:
            raise ValueError(f"unknown component {unknown[0]!r}: choose from {', '.join(COMPONENT_NAMES)} or 'all'")
        if not value:
            raise ValueError(f"name at least one component: {', '.join(COMPONENT_NAMES)} or 'all'")
        return list(dict.fromkeys(value))

    @field_validator("seed_set")
    @classmethod
    def _shipped_or_folder(cls, value: str) -> str:
        """A shipped name as it is; anything else is a folder, made absolute here (its modules are read,
        and checked, once, when the experiment is created: evaluator.component_set.ComponentSet.named)."""
        if value in SHIPPED_SETS:
            return value
        if not value.strip():
            raise ValueError(f"name a shipped set ({', '.join(SHIPPED_SETS)}) or a folder of component modules")
        return str(Path(value).expanduser().resolve())

    @field_validator("gpus")
    @classmethod
    def _gpu_indices(cls, value: list[int]) -> list[int]:
        if any(index < 0 for index in value) or len(set(value)) != len(value):
            raise ValueError("GPU indices must be distinct and >= 0, e.g. [0, 1]")
        return value
