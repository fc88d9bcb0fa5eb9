"""GD-SOM (docs/torch.md) against the literal B' x K formula of the reference."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq.integrations.torch import GradientKohonenVectorQuantize  # noqa: E402

from . import reference  # noqa: E402


@pytest.mark.parametrize("grid_dim", [1, 2])
@pytest.mark.parametrize("kind", ["hard", "exponential", "gaussian"])
def test_loss_and_gradient_match_the_literal_formula(kind, grid_dim):
    rng = np.random.default_rng(0)
    K, D, B = 12, 3, 30
    radius = 2.0 if kind == "gaussian" else None
    W0 = rng.normal(size=(K, D))
    vq = GradientKohonenVectorQuantize(
        D, K, grid_dim=grid_dim, neighbourhood=kind, radius=radius, init=W0
    ).double()
    with torch.no_grad():
        vq.codebook.copy_(torch.from_numpy(W0))
    distances = reference.reference_grid_distances(K, grid_dim)
    for t in range(3):
        X = rng.normal(size=(B, D))
        W = vq.codebook.detach().clone().requires_grad_(True)
        bmu = ((X[:, None] - W0[None]) ** 2).sum(-1).argmin(1) if t == 0 else None
        z = torch.from_numpy(X).requires_grad_(True)
        quantized, indices, loss = vq(z)
        # The literal loss, in torch for its gradient: B' x K pairs.
        H = torch.from_numpy(reference.neighbourhood_matrix(distances, kind, t, radius=radius))
        idx = indices
        z_q = W[idx]
        pairs = ((W[None, :, :] - W[idx].detach()[:, None, :]) ** 2).sum(-1)  # (B, K)
        literal = (
            ((z_q - z.detach()) ** 2).mean()
            + 0.25 * ((z - z_q.detach()) ** 2).mean()
            + 0.1 * (H[idx] * pairs).sum(1).mean()
        )
        np.testing.assert_allclose(
            (H[idx] * pairs).sum(1).mean().item(),
            reference.kohonen_loss(W.detach().numpy(), X, distances, kind, t, radius=radius),
            rtol=1e-10,
        )
        if bmu is not None:
            np.testing.assert_array_equal(indices.numpy(), bmu)
        np.testing.assert_allclose(loss.item(), literal.item(), rtol=1e-10)
        loss.backward()
        literal.backward()
        np.testing.assert_allclose(vq.codebook.grad.numpy(), W.grad.numpy(), rtol=1e-9, atol=1e-12)
        with torch.no_grad():  # a plain SGD step, so the next step sees a new codebook
            vq.codebook -= 0.5 * vq.codebook.grad
        vq.codebook.grad = None
        assert int(vq.step) == t + 1


def test_trains_with_an_optimiser_and_eval_freezes_the_step():
    torch.manual_seed(0)
    vq = GradientKohonenVectorQuantize(dim=2, codebook_size=16)
    optimiser = torch.optim.SGD(vq.parameters(), lr=0.5)
    data = torch.randn(256, 2) * 0.3 + 1.0
    first = None
    for _ in range(30):
        _, _, loss = vq(data)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
    vq.eval()
    vq(data)
    assert int(vq.step) == 30
    none = GradientKohonenVectorQuantize(dim=2, codebook_size=16, neighbourhood="none")
    _, _, loss = none(data)
    torch.testing.assert_close(loss, 1.25 * ((data - none.codebook[none(data)[1]]) ** 2).mean())


@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_the_neighbourhood_loss_far_from_the_origin(offset):
    """In float32 the expanded form of the neighbourhood term cancelled away at an offset
    (loss 500x too large at 1e3, found by an adversarial pass); it is evaluated around the
    codebook mean now: the loss and the gradient of the same codes near the origin."""
    rng = np.random.default_rng(1)
    K, D = 16, 4
    # multiples of 2^-10 (float32's spacing at 1e4): the shifted values are exact
    W0 = (np.round(0.05 * rng.normal(size=(K, D)) * 1024) / 1024).astype(np.float32)
    X = (np.round(0.05 * rng.normal(size=(64, D)) * 1024) / 1024).astype(np.float32)
    results = []
    for shift in (0.0, offset):
        vq = GradientKohonenVectorQuantize(D, K, grid_dim=2, kohonen_weight=1.0, init=W0 + np.float32(shift))
        with torch.no_grad():
            vq.codebook.copy_(torch.from_numpy(W0 + np.float32(shift)))
        _, indices, loss = vq(torch.from_numpy(X + np.float32(shift)))
        loss.backward()
        results.append((indices, float(loss.detach()), vq.codebook.grad.clone()))
    (i0, l0, g0), (i1, l1, g1) = results
    assert torch.equal(i0, i1)
    assert l1 == pytest.approx(l0, rel=1e-4)
    np.testing.assert_allclose(g1.numpy(), g0.numpy(), rtol=1e-3, atol=1e-6)
