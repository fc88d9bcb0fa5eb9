"""The KSOM-EMA update against a literal float64 transcription of docs/algorithms.md §7."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq.integrations.torch import KohonenVectorQuantize  # noqa: E402

from . import reference  # noqa: E402

N_UNITS, DIM, BATCH, STEPS = 12, 3, 40, 6
RADIUS = {"none": None, "hard": None, "exponential": 10.0, "gaussian": 2.0}


def _float32_exact(rng, shape):
    """Random values that float32 holds exactly (the module stores its init in float32)."""
    return rng.normal(size=shape).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("init_count", [0.0, 1.0])
@pytest.mark.parametrize("grid_dim", [1, 2])
@pytest.mark.parametrize("kind", ["none", "hard", "exponential", "gaussian"])
def test_step_for_step_against_reference(kind, grid_dim, init_count, update):
    rng = np.random.default_rng(hash((kind, grid_dim, init_count, update)) % 2**32)
    codebook = _float32_exact(rng, (N_UNITS, DIM))
    vq = KohonenVectorQuantize(
        dim=DIM,
        codebook_size=N_UNITS,
        grid_dim=grid_dim,
        neighbourhood=kind,
        radius=RADIUS[kind],
        decay=0.9,
        init_count=init_count,
        update=update,
        init=codebook,
    ).double()
    ref = reference.KsomEma(
        codebook,
        reference.reference_grid_distances(N_UNITS, grid_dim),
        kind,
        decay=0.9,
        init_count=init_count,
        update=update,
        radius=RADIUS[kind],
    )
    for step in range(STEPS):
        # Shifted batches, so that some units stay unused for a while.
        X = rng.normal(size=(BATCH, DIM)) + 0.5 * step
        bmu, z_q = ref.step(X)
        z = torch.tensor(X, requires_grad=True)
        quantized, indices, loss = vq(z)
        np.testing.assert_array_equal(indices.numpy(), bmu)
        np.testing.assert_allclose(quantized.detach().numpy(), z_q, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(loss.item(), 0.25 * ((X - z_q) ** 2).mean(), rtol=1e-12)
        np.testing.assert_allclose(vq.ema_count.numpy(), ref.N, rtol=1e-10)
        np.testing.assert_allclose(vq.ema_sum.numpy(), ref.m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(vq.codebook.numpy(), ref.w, rtol=1e-9, atol=1e-12)
        assert int(vq.step) == step + 1


@pytest.mark.parametrize("kind", ["hard", "exponential"])
def test_float32_module_tracks_float64_reference(kind):
    rng = np.random.default_rng(1)
    codebook = _float32_exact(rng, (16, 4))
    vq = KohonenVectorQuantize(dim=4, codebook_size=16, neighbourhood=kind, init=codebook)
    ref = reference.KsomEma(codebook, reference.reference_grid_distances(16, 2), kind)
    for _ in range(10):
        X = rng.normal(size=(64, 4))
        bmu, _ = ref.step(X)
        _, indices, _ = vq(torch.tensor(X, dtype=torch.float32))
        np.testing.assert_array_equal(indices.numpy(), bmu)
    assert vq.codebook.dtype == torch.float32
    np.testing.assert_allclose(vq.codebook.numpy(), ref.w, rtol=1e-4, atol=1e-5)


def test_reference_automatic_shape_is_unit_for_unit():
    """grid=None uses the reference's shape: 512 -> somvq (16, 32) == reference [32, 16]."""
    vq = KohonenVectorQuantize(dim=2, codebook_size=512)
    assert vq.grid_shape == (16, 32)
    assert reference.decompose_factors(512, 2) == [32, 16]
    np.testing.assert_allclose(
        vq.grid_distances.numpy(), reference.reference_grid_distances(512, 2), atol=1e-6
    )


def test_none_is_ema_vq():
    """With neighbourhood 'none', the classic EMA-VQ update of VQ-VAE, written directly."""
    rng = np.random.default_rng(2)
    codebook = _float32_exact(rng, (8, 3))
    vq = KohonenVectorQuantize(dim=3, codebook_size=8, neighbourhood="none", init=codebook).double()
    w, m, N = codebook.copy(), codebook.copy(), np.ones(8)
    for _ in range(5):
        X = rng.normal(size=(30, 3))
        onehot = np.eye(8)[((X[:, None] - w[None]) ** 2).sum(-1).argmin(1)]
        N = 0.99 * N + 0.01 * onehot.sum(0)
        n = N.sum()
        N = (N + 1e-5) / (n + 8e-5) * n
        m = 0.99 * m + 0.01 * onehot.T @ X
        w = m / N[:, None]
        vq(torch.tensor(X))
    np.testing.assert_allclose(vq.codebook.numpy(), w, rtol=1e-10)


def test_eval_changes_nothing_and_gradient_is_straight_through():
    vq = KohonenVectorQuantize(dim=4, codebook_size=16)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq.eval()
    z = torch.randn(3, 5, 4, requires_grad=True)
    quantized, indices, loss = vq(z)
    for key, value in vq.state_dict().items():
        assert torch.equal(value, before[key]), key
    np.testing.assert_allclose(quantized.detach().numpy(), vq.codebook[indices].numpy(), atol=1e-6)
    ((quantized * 3.0).sum() + loss).backward()
    commitment_gradient = 0.25 * 2 * (z - vq.codebook[indices]).detach().numpy() / z.numel()
    np.testing.assert_allclose(z.grad.numpy(), 3.0 + commitment_gradient, rtol=1e-5)
    assert not vq.codebook.requires_grad
    vq.train()
    vq(torch.randn(3, 5, 4))
    assert int(vq.step) == 1


def test_perplexity_and_used_codes():
    vq = KohonenVectorQuantize(dim=4, codebook_size=16).eval()
    _, indices, _ = vq(torch.randn(200, 4))
    p = np.bincount(indices.numpy(), minlength=16) / 200
    np.testing.assert_allclose(float(vq.perplexity), np.exp(-(p * np.log(p + 1e-10)).sum()), rtol=1e-5)
    assert int(vq.used_codes) == (p > 0).sum()


def test_channels_first_matches_channels_last():
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=6, codebook_size=16, channels_first=True)
    b = KohonenVectorQuantize(dim=6, codebook_size=16)
    b.load_state_dict(a.state_dict())
    z = torch.randn(2, 6, 5, 7)
    qa, ia, la = a(z)
    qb, ib, lb = b(z.permute(0, 2, 3, 1))
    assert qa.shape == z.shape and ia.shape == (2, 5, 7)
    torch.testing.assert_close(qa, qb.permute(0, 3, 1, 2))
    torch.testing.assert_close(ia, ib)
    torch.testing.assert_close(a.codebook, b.codebook)


def test_callable_neighbourhood_equals_named_kernel():
    def hard(distances, t):
        return torch.where(distances < 1.5, 1.0 / (1.0 + 0.1 * t), torch.zeros_like(distances))

    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=3, codebook_size=12, neighbourhood=hard)
    b = KohonenVectorQuantize(dim=3, codebook_size=12, neighbourhood="hard")
    b.load_state_dict(a.state_dict())
    for _ in range(4):
        z = torch.randn(50, 3)
        a(z), b(z)
    torch.testing.assert_close(a.codebook, b.codebook)


def test_forward_has_no_host_synchronisation():
    """No .item()/bool()/int() on tensors in the code that forward runs."""
    import inspect

    from somvq.integrations.torch import base, gdsom, quantizer

    sources = [
        inspect.getsource(quantizer.KohonenVectorQuantize.forward),
        inspect.getsource(quantizer.KohonenVectorQuantize._training_step),
        inspect.getsource(quantizer.KohonenVectorQuantize._smooth),
        inspect.getsource(quantizer.KohonenVectorQuantize._ema),
        inspect.getsource(gdsom.GradientKohonenVectorQuantize.forward),
        inspect.getsource(gdsom.kohonen_loss),
        inspect.getsource(base.GridQuantizer._best_matching_units),
        inspect.getsource(base.GridQuantizer._record_usage),
        inspect.getsource(base.GridQuantizer._hit_counts_into),
    ]
    for source in sources:
        for banned in (".item(", ".tolist(", ".cpu(", ".numpy(", "bincount(", "one_hot("):
            assert banned not in source, banned
