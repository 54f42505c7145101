"""Properties of the record set's own tricks (the Hive's cifar10_speedrun.py) beyond the contracts."""

import json

import pytest
import torch
from typer.testing import CliRunner

from evaluator.component_set import ComponentSet, load_components
from evolve.cli.app import app
from evolve.cli.arguments import candidate_set


@pytest.fixture(scope="module")
def record():
    return load_components(ComponentSet.shipped("record"))


def test_renormalization_interval_grows_from_two_to_seventeen(record):
    schedule = sorted(record["optimizer"].renormalization_steps(243, 2, 15))
    gaps = [b - a for a, b in zip([-1] + schedule, schedule)]
    assert schedule[0] == 1  # the first renormalization comes before the second update
    assert gaps == sorted(gaps) and gaps[0] == 2 and gaps[-1] <= 17
    assert 20 < len(schedule) < 60  # instead of 243 with the baseline's per-step rule
    assert sorted(record["optimizer"].renormalization_steps(10, 1, 0)) == list(range(10))


def test_padded_batch_orthogonalizes_each_filter_as_if_alone(record):
    torch.manual_seed(0)
    filters = [torch.nn.Parameter(torch.randn(*shape)) for shape in [(8, 3, 3, 3), (16, 8, 3, 3), (16, 16, 3, 3)]]
    ns = record["newton_schulz"].orthogonalize
    muon = record["optimizer"].BatchedMuon(filters, ns, lr=0.1, momentum=0.6)
    assert (muon.padded_rows, muon.padded_cols) == (16, 144)
    updates = [torch.randn_like(p) for p in filters]
    batched = muon._orthogonalized(updates)
    for u, b in zip(updates, batched):
        alone = ns(u.reshape(len(u), -1), 3).reshape(u.shape)
        assert b.shape == u.shape and torch.allclose(b, alone, atol=1e-4)


def test_muon_renormalizes_filters_only_when_told(record):
    weight = torch.nn.Parameter(10 * torch.ones(8, 4, 3, 3))
    muon = record["optimizer"].BatchedMuon([weight], record["newton_schulz"].orthogonalize, lr=0.0, momentum=0.6)
    weight.grad = torch.randn_like(weight)
    muon.step(renormalize=False)
    assert weight.norm().item() == pytest.approx(10 * 288**0.5, rel=1e-5)
    muon.step(renormalize=True)
    assert weight.norm().item() == pytest.approx(8**0.5, rel=1e-4)


def test_vectorized_crop_takes_one_window_per_image(record):
    torch.manual_seed(1)
    padded = torch.randn(64, 3, 36, 36)
    out = record["augmentation"].random_crop(padded, 32)
    assert out.shape == (64, 3, 32, 32)
    offsets = set()
    for image, crop in zip(padded, out):
        matches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(image[:, dy : dy + 32, dx : dx + 32], crop)]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 10  # offsets are drawn per image


def test_colour_jitter_shifts_then_scales_within_its_ranges(record):
    torch.manual_seed(2)
    x = torch.zeros(500, 3, 4, 4)
    x[:, :, :, 2:] = 1.0  # two pixel values per image: 0 and 1
    out = record["augmentation"].color_jitter(x, 0.14, 0.13)
    low, high = out[:, 0, 0, 0], out[:, 0, 0, 3]
    scale = high - low  # (1 + s - s') * c with s the shift, c the contrast scale
    shift = low / scale
    assert bool(((scale >= 0.87) & (scale <= 1.13)).all()) and bool((shift.abs() <= 0.14 + 1e-6).all())
    assert scale.std() > 0.03 and shift.std() > 0.03


def test_selective_tta_changes_only_the_least_confident_rows(record):
    torch.manual_seed(3)
    hp = dict(record["hyperparams"].HYPERPARAMS, width1=8, width2=8, width3=8, tta_batch_size=30)
    model = record["architecture"].build_network(hp, torch.device("cpu"))
    model.reset()
    inputs = record["augmentation"].preprocess(torch.randint(0, 256, (100, 32, 32, 3), dtype=torch.uint8), hp)
    model.init_whiten(inputs)
    model.eval()
    with torch.no_grad():
        plain = record["tta"].predict(model, inputs, dict(hp, tta_level=0))
        selective = record["tta"].predict(model, inputs, hp)
        everywhere = record["tta"].predict(model, inputs, dict(hp, tta_fraction=1.0))
    changed = (selective != plain).any(1)
    assert changed.sum().item() == 25
    confidence = plain.softmax(1).amax(1)
    assert confidence[changed].max() <= confidence[~changed].min()
    assert torch.allclose(selective[changed], everywhere[changed], atol=1e-5)


def test_evolve_baseline_trains_the_record_set_end_to_end():
    runner = CliRunner()
    args = ["baseline", "--components", "record", "--device", "cpu", "--data", "synthetic", "--runs", "1",
            "--set", "epochs=2", "--seed", "5", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (sample,) = json.loads(result.stdout)["samples"]
    assert sample["accuracy"] > 0.5  # chance is 0.1, as in the baseline's end-to-end test


def test_eval_candidates_modify_the_chosen_shipped_set(tmp_path):
    record = ComponentSet.shipped("record")
    candidate = tmp_path / "tta.py"
    candidate.write_text(record.sources["tta"])
    component_set, changed = candidate_set(candidate, None, "record")
    assert changed == ["tta"]
    assert component_set.sources["optimizer"] == record.sources["optimizer"]
    assert component_set.sources["optimizer"] != ComponentSet.shipped("baseline").sources["optimizer"]
