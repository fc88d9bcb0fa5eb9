"""Issue 18: code usage over a window, data-dependent init, cosine distance, codebook_dim.

The usage figures are checked against hand counts, cosine and codebook_dim against the
float64 reference (tests/torch/reference.py), k-means against a NumPy Lloyd loop.
"""

import collections
import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq.integrations.torch import KohonenVectorQuantize  # noqa: E402

from . import reference  # noqa: E402


# ------------------------------------------------------------------ usage over a window
def test_usage_window_against_a_hand_count():
    torch.manual_seed(0)
    window = 3
    vq = KohonenVectorQuantize(dim=2, codebook_size=6, neighbourhood="none", usage_window=window)
    assert int(vq.dead_codes) == 6  # nothing seen yet
    history = []
    for step in range(7):
        z = torch.randn(5 + step, 2) * (1 + step)
        if step == 4:
            z[0] = float("nan")  # a non-finite row is not a selection
        _, indices, _ = vq(z)
        chosen = [int(i) for row, i in zip(z, indices) if bool(torch.isfinite(row).all())]
        history.append(chosen)
        counter = collections.Counter(k for batch in history[-window:] for k in batch)
        expected = [float(counter.get(k, 0)) for k in range(6)]
        assert vq.code_usage.tolist() == expected
        assert int(vq.dead_codes) == sum(1 for c in expected if c == 0)
        total = sum(expected)
        hand_perplexity = math.exp(-sum(c / total * math.log(c / total + 1e-10) for c in expected))
        assert float(vq.usage_perplexity) == pytest.approx(hand_perplexity, rel=1e-5)
        metrics = vq.metrics()
        assert torch.equal(metrics["code_usage"], vq.code_usage)
        assert int(metrics["dead_codes"]) == int(vq.dead_codes)
        assert set(metrics) >= {"perplexity", "used_codes", "usage_perplexity", "n_nonfinite_rows"}
    # Eval mode does not touch the window.
    before = vq.usage_ring.clone()
    vq.eval()
    vq(torch.randn(9, 2))
    assert torch.equal(vq.usage_ring, before)


def test_usage_window_survives_state_dict_and_old_states_load():
    torch.manual_seed(1)
    a = KohonenVectorQuantize(dim=3, codebook_size=8, usage_window=4)
    for _ in range(5):
        a(torch.randn(20, 3))
    b = KohonenVectorQuantize(dim=3, codebook_size=8, usage_window=4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.code_usage, a.code_usage) and int(b.dead_codes) == int(a.dead_codes)
    z = torch.randn(20, 3)
    a(z), b(z)
    assert torch.equal(a.code_usage, b.code_usage) and int(a.dead_codes) == int(b.dead_codes)
    old = {k: v for k, v in a.state_dict().items() if k != "usage_ring"}  # written before issue 18
    c = KohonenVectorQuantize(dim=3, codebook_size=8, usage_window=4)
    c.load_state_dict(old)
    assert torch.equal(c.codebook, a.codebook) and float(c.usage_ring.sum()) == 0.0


@pytest.mark.parametrize("window", [0, -1, 2.5])
def test_bad_usage_window(window):
    with pytest.raises(ValueError, match="usage_window"):
        KohonenVectorQuantize(dim=2, codebook_size=4, usage_window=window)


# ------------------------------------------------------------------ data-dependent init
def test_sample_init_takes_distinct_batch_rows_and_keeps_the_ema_invariant():
    torch.manual_seed(2)
    vq = KohonenVectorQuantize(dim=3, codebook_size=8, init="sample", init_count=0.5).double()
    z = torch.randn(30, 3, dtype=torch.float64)
    vq.init_from(z)
    rows = {tuple(r) for r in z.tolist()}
    codes = [tuple(c) for c in vq.codebook.tolist()]
    assert all(c in rows for c in codes) and len(set(codes)) == 8
    # The constructor's invariant: m0 = w0, N0 = init_count.
    assert torch.equal(vq.ema_sum, vq.codebook)
    assert vq.ema_count.tolist() == [0.5] * 8
    assert vq.data_init is None and int(vq.step) == 0


def test_first_training_batch_initialises_then_trains_as_a_fresh_layer():
    torch.manual_seed(3)
    vq = KohonenVectorQuantize(dim=3, codebook_size=8, init="sample")
    z = torch.randn(40, 3)
    torch.manual_seed(4)
    quantized, indices, _ = vq(z)
    probe = KohonenVectorQuantize(dim=3, codebook_size=8, init="sample")
    torch.manual_seed(4)
    probe.init_from(z)
    fresh = KohonenVectorQuantize(dim=3, codebook_size=8, init=probe.codebook.numpy())
    q2, i2, _ = fresh(z)
    assert torch.equal(indices, i2) and torch.equal(quantized, q2)
    assert torch.equal(vq.codebook, fresh.codebook) and torch.equal(vq.ema_sum, fresh.ema_sum)


def test_kmeans_init_equals_a_numpy_lloyd_loop_from_the_same_start():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(40, 2)) + c for c in ([0, 0], [6, 0], [0, 6], [6, 6])])
    z = torch.tensor(X)
    torch.manual_seed(6)
    start = KohonenVectorQuantize(dim=2, codebook_size=4, init="kmeans", kmeans_iters=0).double()
    start.init_from(z)
    torch.manual_seed(6)
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, init="kmeans", kmeans_iters=5).double()
    vq.init_from(z)
    W = start.codebook.numpy().copy()
    for _ in range(5):
        assign = np.array([np.argmin([((x - w) ** 2).sum() for w in W]) for x in X])
        for k in range(4):
            if (assign == k).any():
                W[k] = X[assign == k].mean(0)
    np.testing.assert_allclose(vq.codebook.numpy(), W, rtol=1e-12, atol=1e-12)


def test_pca_init_spans_the_leading_components_around_the_mean():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5)) * np.array([5.0, 2.0, 0.1, 0.1, 0.1]) + 3.0
    vq = KohonenVectorQuantize(dim=5, codebook_size=12, grid=(4, 3), init="pca").double()
    vq.init_from(torch.tensor(X))
    W = vq.codebook.numpy()
    np.testing.assert_allclose(W.mean(0), X.mean(0), atol=1e-10)
    _, _, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    residual = (W - X.mean(0)) - (W - X.mean(0)) @ Vt[:2].T @ Vt[:2]
    np.testing.assert_allclose(residual, 0.0, atol=1e-10)


def test_init_bad_input():
    vq = KohonenVectorQuantize(dim=2, codebook_size=8, init="sample")
    with pytest.raises(ValueError, match=r"codebook_size=8 finite rows on rank 0, got 5 of 5"):
        vq(torch.randn(5, 2))
    z = torch.full((20, 2), float("nan"))
    with pytest.raises(ValueError, match=r"got 0 of 20 rows"):
        KohonenVectorQuantize(dim=2, codebook_size=8, init="kmeans")(z)
    with pytest.raises(ValueError, match=r"init='bogus' is not one of"):
        KohonenVectorQuantize(dim=2, codebook_size=8, init="bogus")
    with pytest.raises(ValueError, match=r"method='bogus'"):
        vq.init_from(torch.randn(20, 2), method="bogus")
    # Some non-finite rows: only the finite ones are used.
    z = torch.randn(20, 2)
    z[::2] = float("inf")
    vq = KohonenVectorQuantize(dim=2, codebook_size=8, init="sample")
    vq.init_from(z)
    finite = {tuple(r) for r in z[1::2].tolist()}
    assert all(tuple(c) in finite for c in vq.codebook.tolist())


def test_loading_a_state_cancels_a_pending_init():
    trained = KohonenVectorQuantize(dim=2, codebook_size=4)
    trained(torch.randn(10, 2))
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, init="kmeans")
    vq.load_state_dict(trained.state_dict())
    assert vq.data_init is None
    vq(torch.randn(2, 2))  # fewer rows than codes: no init runs, no error


# ------------------------------------------------------------------ cosine distance
@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("kind", ["none", "hard"])
def test_cosine_against_reference(kind, update):
    rng = np.random.default_rng(hash((kind, update)) % 2**32)
    vq = KohonenVectorQuantize(
        dim=3,
        codebook_size=12,
        neighbourhood=kind,
        decay=0.9,
        update=update,
        distance="cosine",
        init=rng.normal(size=(12, 3)),
    ).double()
    ref = reference.KsomEma(
        vq.codebook.numpy().copy(),
        reference.reference_grid_distances(12, 2),
        kind,
        decay=0.9,
        update=update,
        cosine=True,
    )
    for step in range(6):
        X = rng.normal(size=(40, 3)) + 0.5 * step
        bmu, z_q = ref.step(X)
        quantized, indices, loss = vq(torch.tensor(X, requires_grad=True))
        np.testing.assert_array_equal(indices.numpy(), bmu)
        np.testing.assert_allclose(quantized.detach().numpy(), z_q, rtol=1e-12, atol=1e-12)
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        np.testing.assert_allclose(loss.item(), 0.25 * ((unit - z_q) ** 2).mean(), rtol=1e-12)
        np.testing.assert_allclose(vq.ema_count.numpy(), ref.N, rtol=1e-10)
        np.testing.assert_allclose(vq.ema_sum.numpy(), ref.m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(vq.codebook.numpy(), ref.w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(vq.codebook.numpy(), axis=1), 1.0, rtol=1e-12)


def test_cosine_zero_rows_are_left_out_like_non_finite_rows():
    torch.manual_seed(8)
    init = torch.randn(6, 3)
    a = KohonenVectorQuantize(dim=3, codebook_size=6, distance="cosine", init=init)
    b = KohonenVectorQuantize(dim=3, codebook_size=6, distance="cosine", init=init)
    X = torch.randn(10, 3)
    with_zero = torch.cat([X, torch.zeros(2, 3)]).requires_grad_(True)
    quantized, indices, loss = a(with_zero)
    b(X)
    assert torch.equal(a.codebook, b.codebook) and torch.equal(a.ema_sum, b.ema_sum)
    assert int(a.n_zero_rows) == 2 and int(a.n_nonfinite_rows) == 0
    loss.backward()
    assert torch.isfinite(with_zero.grad).all() and bool((with_zero.grad[-2:] == 0).all())
    assert torch.isfinite(quantized).all()


@pytest.mark.parametrize("scale", [1e-25, 1e-40, 1e20, 1e38])
def test_cosine_ignores_scale_at_the_dtypes_limits(scale):
    """Squared norms of float32 rows of 1e20 overflowed (the rows became zero vectors that
    all went to code 0 and still counted) and those of 1e-25 vanished (the rows were left
    out as zero rows); found by a bug hunt. Cosine ignores scale: the same codes, the same
    statistics and the same loss as the rows at scale 1."""
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    z = torch.tensor([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.1], [0.3, -0.2]])
    ref = KohonenVectorQuantize(dim=2, codebook_size=4, grid=(4,), distance="cosine", init=codes)
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, grid=(4,), distance="cosine", init=codes)
    _, expected, ref_loss = ref(z)
    scaled = (z * scale).requires_grad_(True)
    quantized, indices, loss = vq(scaled)
    assert indices.tolist() == expected.tolist() == [1, 3, 2, 0]
    assert int(vq.n_zero_rows) == 0
    torch.testing.assert_close(vq.ema_count, ref.ema_count)
    torch.testing.assert_close(vq.codebook, ref.codebook)
    torch.testing.assert_close(loss, ref_loss)
    loss.backward()
    if scale > 1e-30:  # the true gradient is ~1 / scale: at 1e-40 beyond float32 itself
        assert torch.isfinite(scaled.grad).all()


def test_cosine_bad_input():
    with pytest.raises(ValueError, match="distance='manhattan' is not one of"):
        KohonenVectorQuantize(dim=2, codebook_size=4, distance="manhattan")
    init = np.ones((4, 2))
    init[2] = 0.0
    with pytest.raises(ValueError, match="init holds a zero row"):
        KohonenVectorQuantize(dim=2, codebook_size=4, distance="cosine", init=init)
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, distance="cosine", init="sample")
    z = torch.zeros(10, 2)
    z[:3] = torch.randn(3, 2)
    with pytest.raises(ValueError, match="finite, non-zero rows on rank 0, got 3 of 10"):
        vq(z)


def test_to_estimator_refuses_cosine():
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, distance="cosine")
    with pytest.raises(ValueError, match="cosine"):
        vq.to_estimator()


# ------------------------------------------------------------------ codebook_dim
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_codebook_dim_against_reference(distance):
    rng = np.random.default_rng(9)
    torch.manual_seed(9)
    vq = KohonenVectorQuantize(
        dim=6,
        codebook_size=12,
        codebook_dim=3,
        decay=0.9,
        distance=distance,
    ).double()
    A, a = vq.project_in.weight.detach().numpy(), vq.project_in.bias.detach().numpy()
    B, b = vq.project_out.weight.detach().numpy(), vq.project_out.bias.detach().numpy()
    assert vq.codebook.shape == (12, 3)
    ref = reference.KsomEma(
        vq.codebook.numpy().copy(),
        reference.reference_grid_distances(12, 2),
        "hard",
        decay=0.9,
        cosine=distance == "cosine",
    )
    for step in range(5):
        X = rng.normal(size=(4, 10, 6)) + 0.3 * step
        projected = np.einsum("btd,cd->btc", X, A) + a
        bmu, z_q = ref.step(projected.reshape(-1, 3))
        quantized, indices, loss = vq(torch.tensor(X))
        np.testing.assert_array_equal(indices.numpy().reshape(-1), bmu)
        np.testing.assert_allclose(
            quantized.detach().numpy().reshape(-1, 6), z_q @ B.T + b, rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(vq.codebook.numpy(), ref.w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(vq.ema_sum.numpy(), ref.m, rtol=1e-10, atol=1e-12)


def test_codebook_dim_projections_learn():
    torch.manual_seed(10)
    vq = KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=2)
    z = torch.randn(32, 8, requires_grad=True)
    quantized, _, loss = vq(z)
    (quantized.square().mean() + loss).backward()
    assert vq.project_in.weight.grad.abs().sum() > 0 and vq.project_out.weight.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0
    assert {name for name, _ in vq.named_parameters()} == {
        "project_in.weight",
        "project_in.bias",
        "project_out.weight",
        "project_out.bias",
    }
    assert KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=8).project_in is None


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_codebook_dim_non_finite_rows_leave_the_projection_finite(distance, bad):
    """A row holding NaN/inf gets gradient 0 in project_in too (its weight gradient is
    grad_out^T @ rows: 0 x NaN would be NaN), and the step equals the batch without it."""
    torch.manual_seed(11)
    vq = KohonenVectorQuantize(dim=4, codebook_size=16, codebook_dim=2, distance=distance)
    clean = copy.deepcopy(vq)
    z = torch.randn(32, 4)
    z_bad = z.clone()
    z_bad[0, 0] = bad
    quantized, indices, loss = vq(z_bad.requires_grad_())
    (quantized.square().mean() + loss).backward()
    for parameter in vq.parameters():
        assert torch.isfinite(parameter.grad).all()
    assert int(vq.n_nonfinite_rows) == 1
    _, clean_indices, _ = clean(z[1:])
    assert torch.equal(indices[1:], clean_indices)
    assert torch.equal(vq.codebook, clean.codebook) and torch.equal(vq.ema_sum, clean.ema_sum)
    # after an optimiser step the layer still trains on clean batches
    torch.optim.SGD(vq.parameters(), lr=0.1).step()
    vq(torch.randn(32, 4))
    assert int(vq.n_nonfinite_rows) == 1 and int(vq.used_codes) > 0


@pytest.mark.parametrize("codebook_dim", [9, 0, 2.5])
def test_bad_codebook_dim(codebook_dim):
    with pytest.raises(ValueError, match=r"codebook_dim"):
        KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=codebook_dim)


def test_codebook_dim_larger_than_dim_message():
    with pytest.raises(ValueError, match=r"codebook_dim=9 is larger than dim=8"):
        KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=9)


def test_bf16_autocast_with_the_new_options():
    torch.manual_seed(11)
    vq = KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=4, distance="cosine", init="kmeans")
    z = torch.randn(2, 40, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, indices, loss = vq(z)
    assert quantized.dtype == torch.float32 and loss.dtype == torch.float32  # z is float32
    assert vq.codebook.dtype == torch.float32 and vq.ema_sum.dtype == torch.float32
    (quantized.square().mean() + loss).backward()
    assert torch.isfinite(z.grad).all()
    zb = torch.randn(2, 40, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        qb, _, lb = vq(zb)
    assert qb.dtype == torch.bfloat16 and lb.dtype == torch.float32
    np.testing.assert_allclose(np.linalg.norm(vq.codebook.numpy(), axis=1), 1.0, rtol=1e-6)
