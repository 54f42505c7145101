"""Properties of the shipped components beyond the generic contracts (both sets where shared)."""

import torch

from evaluator.component_set import load_components

AIRBENCH94_PARAMETERS = 1_972_792


def test_network_has_airbench94_parameter_count_and_output(shipped_set):
    modules = load_components(shipped_set)
    hp = dict(modules["hyperparams"].HYPERPARAMS)
    model = modules["architecture"].build_network(hp, torch.device("cpu"))
    model.reset()
    assert sum(p.numel() for p in model.parameters()) == AIRBENCH94_PARAMETERS
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    inputs = modules["augmentation"].preprocess(images, hp)
    model.init_whiten(inputs)
    with torch.no_grad():
        assert model.eval()(inputs).shape == (4, 10)


def test_whitening_layer_whitens_patches(shipped_set):
    modules = load_components(shipped_set)
    hp = dict(modules["hyperparams"].HYPERPARAMS, width1=8, width2=8, width3=8)
    model = modules["architecture"].build_network(hp, torch.device("cpu"))
    model.reset()
    inputs = modules["augmentation"].preprocess(torch.randint(0, 256, (64, 32, 32, 3), dtype=torch.uint8), hp)
    model.init_whiten(inputs)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(inputs, model.whiten.weight)  # without the bias
    half = out[:, : out.shape[1] // 2].permute(0, 2, 3, 1).reshape(-1, out.shape[1] // 2)
    covariance = half.T @ half / len(half)
    assert torch.allclose(covariance, torch.eye(len(covariance)), atol=0.05)


def test_batched_newton_schulz_matches_one_at_a_time(shipped_set):
    ns = load_components(shipped_set)["newton_schulz"]
    G = torch.randn(3, 16, 40)
    batched = ns.orthogonalize(G, 3)
    single = torch.stack([ns.orthogonalize(g, 3) for g in G])
    assert torch.allclose(batched.float(), single.float(), atol=1e-2)


def test_muon_lowers_a_least_squares_loss(baseline_set):
    modules = load_components(baseline_set)
    torch.manual_seed(0)
    target = torch.randn(8, 4, 3, 3)
    weight = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    muon = modules["optimizer"].Muon([weight], modules["newton_schulz"].orthogonalize, lr=0.05, momentum=0.6, nesterov=True)
    losses = []
    for _ in range(20):
        loss = ((weight - target) ** 2).sum()
        losses.append(loss.item())
        loss.backward()
        muon.step()
        muon.zero_grad()
    assert losses[-1] < 0.5 * losses[0]
    state = muon.state_dict()
    assert "momentum_buffer" in state["state"][0]
