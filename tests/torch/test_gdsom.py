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
