"""Issue 19: component merges, novelty before evaluation, the behaviour check, mutator liveness and
the model bandit. The loop runs on the stub evaluator of tests/stub_search.py (seconds); the
behaviour check runs the real sandboxed CPU stage."""

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from evaluator.cascade import ParentBehaviour, behaviour_stage, contracts_stage, evaluate_candidate
from evaluator.component_set import ComponentSet
from evaluator.data import synthetic_dataset
from evaluator.settings import SCALES, HarnessSettings, ScoreSettings
from evolve.cli.app import app
from evolve.config import ExperimentConfig, LLMSettings, ModelSpec
from evolve.config_display import masked_dump
from evolve.database import Store
from evolve.llm.client import Budget, LLMClient
from evolve.search.liveness import change_warnings, dead_sites, ineffective_changes
from evolve.search.loop import EvolutionLoop
from evolve.search.mutator import MutatorError, mutate
from evolve.search.novelty import structural_distance
from evolve.search.progress import LoopStats, Progress
from evolve.search.proposer import LLMProposer, MutatorProposer, Proposal, ProposalRequest, Unusable
from tests.loopback_llm import LoopbackLLM, http_error, reply, search_replace
from tests.stub_search import StubExecutor

BASELINE = ComponentSet.shipped("baseline").sources


def run_loop(url: str, config: ExperimentConfig, proposer, name: str = "exp", executor=None, seed: int = 3):
    with Store.open(url) as store:
        experiment = store.find_experiment(name) or store.create_experiment(
            name, config.components, masked_dump(config), config.seed_set, "stub", seed_sources=BASELINE,
        )
        stats = LoopStats(experiment=name, proposer=proposer.name)
        with Progress(Console(quiet=True), stats) as progress:
            loop = EvolutionLoop(config, store, experiment, executor or StubExecutor(), proposer, progress, Budget(),
                                 np.random.default_rng(seed))
            return loop, loop.run()


def small_config(**changes) -> ExperimentConfig:
    settings = dict(components=["hyperparams", "newton_schulz"], generations=5, candidates_per_generation=2, seed=1,
                    harness={"device": "cpu"}, population={"islands": 1}, llm={"concurrent_calls": 1})
    settings.update(changes)
    return ExperimentConfig(**settings)


# (1) merges


def test_a_two_component_mutator_search_evaluates_a_merge_whose_lineage_shows_both_parents(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    config = small_config(search={"merge_share": 0.3}, generations=7)
    loop, reason = run_loop(url, config, MutatorProposer(config.mutator, np.random.default_rng(5)))
    with Store.open(url) as store:
        experiment = store.experiment("exp")
        candidates = {c.id: c for c in store.candidates(experiment.id)}
        merges = [c for c in candidates.values() if c.origin == "merge"]
        assert merges, [(c.id, c.origin, c.component) for c in candidates.values()]
        merge = merges[0]
        assert merge.status in ("evaluated", "champion") and merge.score is not None
        first, second = candidates[merge.parent_id], candidates[merge.second_parent_id]
        assert first.component != merge.component and second.component == merge.component
        assert merge.source == second.source  # the second parent's version of its component
        sources = store.component_set_sources(merge.id)  # the first parent's set with that module taken
        assert sources[first.component] == first.source and sources[merge.component] == second.source
        assert loop.stats.merges == len(merges) and len(merges) <= 0.3 * loop.attempts + 1
    shown = CliRunner().invoke(app, ["lineage", "exp", "--db", url])
    assert shown.exit_code == 0 and f"#{merge.id} x #{merge.second_parent_id}" in shown.output
    detail = CliRunner().invoke(app, ["show", str(merge.id), "--db", url])
    assert f"parents #{merge.parent_id}, #{merge.second_parent_id}" in detail.output


def test_no_merge_without_two_components():
    config = small_config(components=["hyperparams"], search={"merge_share": 1.0})
    proposer = MutatorProposer(config.mutator, np.random.default_rng(5))
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        loop, _ = run_loop(f"sqlite:///{folder}/e.db", config, proposer)
        assert loop.stats.merges == 0


# (2) novelty


RENAMED_OLD, RENAMED_NEW = "update = self.orthogonalize", "step_update = self.orthogonalize"


class CopyThenChange:
    """First a near-copy of the optimizer (a local renamed), then a real change."""

    name = "scripted"

    def __init__(self):
        self.calls = 0

    def propose(self, request: ProposalRequest) -> Proposal | Unusable:
        self.calls += 1
        source = request.parent.source
        if self.calls == 1:
            renamed = source.replace("update", "step_update")
            return Proposal(request=request, source=renamed, origin="mutator", description="a renamed local")
        return Proposal(request=request, source=source.replace("lr: float = 1e-3", "lr: float = 2e-3").replace(
            "nesterov=True,\n            newton_schulz_steps", "nesterov=False,\n            newton_schulz_steps"),
            origin="mutator", description="plain momentum for Muon")


def test_a_near_copy_is_skipped_before_any_worker_and_a_real_change_is_evaluated(tmp_path):
    assert RENAMED_OLD in BASELINE["optimizer"]
    renamed = BASELINE["optimizer"].replace("update", "step_update")
    assert structural_distance(BASELINE["optimizer"], renamed) == 0.0
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    executor = StubExecutor()
    config = small_config(components=["optimizer"], generations=1, candidates_per_generation=2)
    loop, _ = run_loop(url, config, CopyThenChange(), executor=executor)
    evaluated_sources = [job.component_set.sources["optimizer"] for job in executor.jobs if hasattr(job, "changed")]
    assert renamed not in evaluated_sources  # no worker ever saw the near-copy
    with Store.open(url) as store:
        experiment = store.experiment("exp")
        counts = store.proposal_counts(experiment.id)
        assert counts == {"near-copy": 1, "new": 1}
        children = [c for c in store.candidates(experiment.id) if c.origin != "seed"]
        assert len(children) == 1 and children[0].status in ("evaluated", "champion")
        assert children[0].source in evaluated_sources
        reason = store.proposal_reasons(experiment.id, "near-copy")[0]
        assert "near-copy of #1" in reason and "structural distance 0.0000" in reason
    assert loop.stats.near_copies == 1
    shown = CliRunner().invoke(app, ["show", "1", "--db", url])
    assert "1 near-copy" in shown.output


# (4) no mutation that cannot matter


def test_liveness_finds_the_overridden_defaults_and_the_scale_keys():
    dead = dead_sites("optimizer", BASELINE["optimizer"], BASELINE, SCALES["tiny"])
    assert "Muon.__init__(lr=)" in dead and "Muon.__init__(momentum=)" in dead
    for seed in range(20):  # every number of the optimizer is dead; its program edits are live
        mutation = mutate("optimizer", BASELINE["optimizer"], np.random.default_rng(seed), dead=dead)
        assert mutation.changes[0].operator != "constant" and mutation.changes[0].site not in dead
    numbers_only = "import torch\n\ndef f(x, lr=0.1):\n    return x\n\ndef g(x):\n    return f(x, lr=x)\n"
    with pytest.raises(MutatorError, match="cannot take effect"):
        mutate("optimizer", numbers_only, np.random.default_rng(0), dead=dead_sites("optimizer", numbers_only, {}, {}))
    dead = dead_sites("hyperparams", BASELINE["hyperparams"], BASELINE, SCALES["tiny"])
    assert {'HYPERPARAMS["batch_size"]', 'HYPERPARAMS["width1"]', 'HYPERPARAMS["whiten_init_images"]'} <= set(dead)
    for seed in range(40):
        mutation = mutate("hyperparams", BASELINE["hyperparams"], np.random.default_rng(seed), dead=dead)
        assert not any(change.site in dead for change in mutation.changes)
    dead = dead_sites("newton_schulz", BASELINE["newton_schulz"], BASELINE, {})
    assert "orthogonalize(steps=)" in dead and "orthogonalize(eps=)" not in dead  # the optimizer passes steps, never eps
    child = BASELINE["optimizer"].replace("lr: float = 1e-3", "lr: float = 2e-3")
    assert any("lr" in w for w in ineffective_changes("optimizer", BASELINE["optimizer"], child, BASELINE, {}))


def test_eval_warns_when_a_change_cannot_take_effect():
    child = ComponentSet(sources=BASELINE).with_component("optimizer", BASELINE["optimizer"].replace("lr: float = 1e-3", "lr: float = 2e-3"))
    warnings = change_warnings(child, ["optimizer"], ComponentSet(sources=BASELINE), HarnessSettings(device="cpu"))
    assert len(warnings) == 1 and "cannot take effect" in warnings[0] and "Muon.__init__(lr=)" in warnings[0]
    scale = ComponentSet(sources=BASELINE).with_component("hyperparams", BASELINE["hyperparams"].replace('"width1": 64', '"width1": 32'))
    assert change_warnings(scale, ["hyperparams"], ComponentSet(sources=BASELINE), HarnessSettings(device="cpu"))
    assert not change_warnings(scale, ["hyperparams"], ComponentSet(sources=BASELINE), HarnessSettings(device="cuda"))


def test_the_behaviour_stage_skips_a_child_identical_to_its_parent_before_any_device_time(tmp_path):
    harness = HarnessSettings(device="cpu", data="synthetic")
    overrides = harness.effective_overrides()
    parent_fingerprints: dict[str, str] = {}
    seed = ComponentSet(sources=BASELINE)
    assert contracts_stage(seed, ["optimizer"], harness_limits(), parent_fingerprints, overrides).status == "passed"
    assert set(parent_fingerprints) == set(BASELINE)
    parent = ParentBehaviour(parent_id=1, component="optimizer", fingerprints=parent_fingerprints)

    dead_change = seed.with_component("optimizer", BASELINE["optimizer"].replace("lr: float = 1e-3", "lr: float = 2e-3"))
    evaluation = evaluate_candidate(dead_change, ["optimizer"], synthetic_dataset(200, 50, seed=1), harness, ScoreSettings(),
                                    parent=parent)
    assert evaluation.status == "rejected"
    assert [s.stage for s in evaluation.stages] == ["static", "contracts", "behaviour"]  # no smoke: no device time
    assert "behaves exactly like parent #1" in evaluation.stages[-1].message

    live = seed.with_component("hyperparams", BASELINE["hyperparams"].replace('"muon_lr": 0.24', '"muon_lr": 0.3'))
    child_fingerprints: dict[str, str] = {}
    assert contracts_stage(live, ["hyperparams"], harness_limits(), child_fingerprints, overrides).status == "passed"
    as_hyperparams = parent.model_copy(update={"component": "hyperparams"})
    assert behaviour_stage(child_fingerprints, as_hyperparams).status == "passed"
    scale_only = seed.with_component("hyperparams", BASELINE["hyperparams"].replace('"batch_size": 2000', '"batch_size": 1000'))
    fingerprints: dict[str, str] = {}
    contracts_stage(scale_only, ["hyperparams"], harness_limits(), fingerprints, overrides)
    assert behaviour_stage(fingerprints, as_hyperparams).status == "rejected"  # the tiny scale overrides batch_size


def harness_limits():
    from evaluator.cascade import CascadeSettings

    return CascadeSettings().limits


# (3) the model bandit


GOOD, BAD = "good-cheap", "bad-dear"


def bandit_responder(counter):
    def respond(body: dict):
        counter[body["model"]] = counter.get(body["model"], 0) + 1
        if body["model"] == GOOD:
            n = counter[GOOD]
            return reply(search_replace("HYPERPARAMS = {", f"TUNED_{n} = {n}\nHYPERPARAMS = {{"), 500, 100)
        return reply("I would rather not change anything.", 5000, 2000)

    return respond


def llm_config(server: LoopbackLLM, generations: int) -> ExperimentConfig:
    return small_config(
        components=["hyperparams"], generations=generations, candidates_per_generation=2,
        llm=LLMSettings(base_url=server.url, api_key="test", max_retries=0, concurrent_calls=1, models=[
            ModelSpec(name=GOOD, weight=1.0, input_usd_per_million=0.1, output_usd_per_million=0.4),
            ModelSpec(name=BAD, weight=3.0, input_usd_per_million=5.0, output_usd_per_million=15.0),  # the prior favours it
        ]),
    )


def test_the_bandit_shifts_to_the_better_cheaper_model_and_keeps_it_after_a_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    counter: dict[str, int] = {}
    with LoopbackLLM(responder=bandit_responder(counter)) as server:
        config = llm_config(server, generations=8)
        proposer = LLMProposer(LLMClient(config.llm, np.random.default_rng(0)), config.score, "diff", "a stub")
        loop, _ = run_loop(url, config, proposer)
        with Store.open(url) as store:
            chosen = [row["model"] for row in store.model_outcomes(store.experiment("exp").id)]
        assert len(chosen) == 16 and chosen[0] == BAD  # it starts where the weights say
        assert chosen[-8:].count(GOOD) >= 6, chosen  # within 16 proposals it prefers the better, cheaper one
        values = loop.bandit.values()
        assert values[GOOD] > values[BAD]
        prompt = server.requests[-1].body["messages"][-1]["content"]  # (5) the prompt says what cannot take effect
        assert "cannot take effect" in prompt and 'HYPERPARAMS["batch_size"]' in prompt

        resumed_config = llm_config(server, generations=12)
        proposer = LLMProposer(LLMClient(resumed_config.llm, np.random.default_rng(1)), config.score, "diff", "a stub")
        with Store.open(url) as store:
            store.update_experiment_config(store.experiment("exp").id, masked_dump(resumed_config))
        resumed, _ = run_loop(url, resumed_config, proposer, seed=4)
        with Store.open(url) as store:
            after = [row["model"] for row in store.model_outcomes(store.experiment("exp").id)][16:]
        assert resumed.bandit.arms[GOOD].proposals == chosen.count(GOOD) + after.count(GOOD)  # restored from the database
        assert len(after) == 8 and after.count(GOOD) >= 6, after


def test_an_unusable_llm_reply_falls_back_to_the_built_in_mutator_and_keeps_the_calls(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    prose = [reply("I would tune the learning rate.")] * 2  # no usable format, then the same after the repair round
    with LoopbackLLM(*prose * 2, http_error(500)) as server:
        config = llm_config(server, generations=1).model_copy(update={"candidates_per_generation": 3})
        client = LLMClient(config.llm, np.random.default_rng(0))
        proposer = LLMProposer(client, config.score, "diff", "a stub", fallback=MutatorProposer(config.mutator, np.random.default_rng(1)))
        loop, _ = run_loop(url, config, proposer)
    with Store.open(url) as store:
        children = [c for c in store.candidates(store.experiment("exp").id) if c.origin != "seed"]
        assert len(children) == 3 and all(c.origin == "mutator" for c in children)
        descriptions = sorted(c.description for c in children)
        assert sum("(built-in mutator: the reply was unusable after one repair" in d for d in descriptions) == 2, descriptions
        assert sum("(built-in mutator: the LLM call failed" in d for d in descriptions) == 1, descriptions
        assert len(server.requests) == 5  # every call was made, and recorded with the proposal
        assert all(c.llm_call_id is not None for c in children)


def test_without_a_fallback_an_unusable_llm_reply_stays_unusable(tmp_path):
    url = f"sqlite:///{tmp_path / 'evolve.db'}"
    with LoopbackLLM(reply("no patch here"), reply("still none")) as server:
        config = llm_config(server, generations=1).model_copy(update={"candidates_per_generation": 1})
        proposer = LLMProposer(LLMClient(config.llm, np.random.default_rng(0)), config.score, "diff", "a stub")
        loop, _ = run_loop(url, config, proposer)
    assert loop.stats.rejections and sum(loop.stats.rejections.values()) == 1
