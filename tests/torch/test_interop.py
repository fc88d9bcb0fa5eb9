"""Agreement with the core's mini-batch KSOM, to_estimator / from_estimator, state_dict."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq import KSOM, Grid  # noqa: E402
from somvq.integrations.torch import KohonenVectorQuantize  # noqa: E402

from .. import naive  # noqa: E402

KINDS = ["none", "hard", "exponential", "gaussian"]


def _batches(seed, n_batches=5, rows=48, dim=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(rows, dim)) + 0.4 * i for i in range(n_batches)]


def _init(seed, n_units=12, dim=3):
    return np.random.default_rng(seed).normal(size=(n_units, dim)).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("update", ["all", "written"])
@pytest.mark.parametrize("init_count", [0.0, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_agrees_with_core_minibatch_ksom(kind, init_count, update):
    """Same init, grid, neighbourhood and schedule: the core's partial_fit == forward."""
    codebook = _init(0)
    radius = 2.0 if kind == "gaussian" else None
    som = KSOM(
        grid=(4, 3),
        neighbourhood=kind,
        radius=radius,
        radius_schedule="inverse_time",
        algorithm="minibatch",
        batch_size=1000,
        decay=0.95,
        eps=1e-5,
        init_count=init_count,
        update=update,
        init=codebook,
    )
    vq = KohonenVectorQuantize(
        dim=3,
        codebook_size=12,
        grid=(4, 3),
        neighbourhood=kind,
        radius=radius,
        decay=0.95,
        eps=1e-5,
        init_count=init_count,
        update=update,
        init=codebook,
    ).double()
    for X in _batches(1):
        som.partial_fit(X)
        vq(torch.from_numpy(X))
        np.testing.assert_allclose(vq.codebook.numpy(), som.codebook_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(vq.ema_count.numpy(), som.ema_count_, rtol=1e-9)
    np.testing.assert_allclose(vq.ema_sum.numpy(), som.ema_sum_, rtol=1e-9, atol=1e-12)
    assert som.n_steps_ == int(vq.step) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_to_estimator_continues_the_same_training(kind):
    torch.manual_seed(0)
    vq = KohonenVectorQuantize(dim=3, codebook_size=12, grid=(3, 4), neighbourhood=kind).double()
    batches = _batches(2, n_batches=6)
    for X in batches[:3]:
        vq(torch.from_numpy(X))
    som = vq.to_estimator(batch_size=1000)
    assert som.algorithm == "minibatch" and som.neighbourhood == kind
    assert som.grid_.shape == (3, 4) and som.n_steps_ == 3
    np.testing.assert_array_equal(som.codebook_, vq.codebook.numpy())
    X = batches[3]
    np.testing.assert_array_equal(som.predict(X), vq.eval()(torch.from_numpy(X))[1].numpy())
    vq.train()
    for X in batches[3:]:
        som.partial_fit(X)
        vq(torch.from_numpy(X))
    np.testing.assert_allclose(som.codebook_, vq.codebook.numpy(), rtol=1e-9, atol=1e-12)
    assert som.n_steps_ == int(vq.step) == 6
    # The core's metrics work on the converted map, on its grid.
    assert som.umatrix().shape == (3, 4)
    expected = naive.topographic_error(X, som.codebook_, naive.grid_distances((3, 4)))
    assert som.topographic_error(X) == pytest.approx(expected, abs=1e-12)


def test_to_estimator_from_float32_module_and_grid_options():
    grid = Grid((4, 4), topology="hexagonal", periodic=True)
    vq = KohonenVectorQuantize(dim=5, codebook_size=16, grid=grid)
    vq(torch.randn(100, 5))
    som = vq.to_estimator()
    assert som.codebook_.dtype == np.float32 and som.grid_ == grid
    som.partial_fit(np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32))
    assert som.n_steps_ == 2


def test_from_estimator_round_trip():
    X = np.random.default_rng(3).normal(size=(300, 4))
    som = KSOM(
        grid=(3, 4), neighbourhood="hard", algorithm="minibatch", batch_size=50, n_epochs=2, random_state=0
    ).fit(X)
    vq = KohonenVectorQuantize.from_estimator(som).double()
    assert vq.grid_shape == (3, 4) and int(vq.step) == som.n_steps_ == 12
    np.testing.assert_allclose(vq.codebook.numpy(), som.codebook_, rtol=1e-6)
    np.testing.assert_allclose(vq.ema_count.numpy(), som.ema_count_, rtol=1e-6)
    back = vq.to_estimator()
    np.testing.assert_allclose(back.codebook_, som.codebook_, rtol=1e-6)
    # A batch-trained map starts a fresh EMA from its codebook.
    batch = KSOM(grid=(3, 4), neighbourhood="gaussian", n_epochs=2, random_state=0).fit(X)
    vq2 = KohonenVectorQuantize.from_estimator(batch, decay=0.9)
    assert vq2.decay == 0.9 and int(vq2.step) == 0 and vq2.map.kind == "gaussian"
    np.testing.assert_allclose(vq2.codebook.numpy(), batch.codebook_, rtol=1e-6)
    np.testing.assert_allclose(vq2.ema_sum.numpy(), batch.codebook_, rtol=1e-6)


def test_interop_errors():
    with pytest.raises(ValueError, match="not fitted"):
        KohonenVectorQuantize.from_estimator(KSOM())
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, neighbourhood=lambda d, t: d * 0)
    with pytest.raises(ValueError, match="callable"):
        vq.to_estimator()


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=4, codebook_size=16, neighbourhood="exponential")
    for _ in range(3):
        a(torch.randn(64, 4))
    state = a.state_dict()
    assert set(state) == {
        "codebook",
        "ema_sum",
        "ema_count",
        "step",
        "grid_spec",
        "usage_ring",
    }  # grid_spec: the map (issue 11); usage_ring: issue 18
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    b = KohonenVectorQuantize(dim=4, codebook_size=16, neighbourhood="exponential")
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert int(b.step) == 3
    for _ in range(3):
        z = torch.randn(64, 4)
        qa, ia, la = a(z)
        qb, ib, lb = b(z)
        assert torch.equal(qa, qb) and torch.equal(ia, ib) and torch.equal(la, lb)
    for key in state:
        assert torch.equal(a.state_dict()[key], b.state_dict()[key])


def test_autocast_bf16_matches_float32_on_the_same_values():
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=8, codebook_size=16)
    b = KohonenVectorQuantize(dim=8, codebook_size=16)
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        z = torch.randn(2, 50, 8, dtype=torch.bfloat16, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            qa, ia, la = a(z)
        qb, ib, lb = b(z.detach().float())
        assert qa.dtype == torch.bfloat16 and la.dtype == torch.float32
        assert a.codebook.dtype == a.ema_sum.dtype == torch.float32
        assert torch.equal(ia, ib)
        torch.testing.assert_close(la, lb)
        (qa.float().sum() + la).backward()
        assert z.grad is not None and torch.isfinite(z.grad).all()
    torch.testing.assert_close(a.codebook, b.codebook, rtol=0, atol=0)
    # fp16 input outside autocast: statistics stay float32 too.
    q, _, loss = a(torch.randn(10, 8, dtype=torch.float16))
    assert q.dtype == torch.float16 and loss.dtype == torch.float32


def test_half_module_keeps_float32_statistics():
    torch.manual_seed(0)
    vq = KohonenVectorQuantize(dim=4, codebook_size=16).half()
    assert vq.grid_distances.dtype == torch.float32
    # the same state in float32: the half module's step is this step, rounded to float16
    ref = KohonenVectorQuantize(dim=4, codebook_size=16)
    ref.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in vq.state_dict().items()})
    z = torch.randn(30, 4, dtype=torch.float16)
    q, indices, loss = vq(z)
    q_ref, indices_ref, loss_ref = ref(z.float())
    assert q.dtype == torch.float16 and loss.dtype == torch.float32
    assert torch.equal(indices, indices_ref)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(vq.codebook.float(), ref.codebook, rtol=2**-10, atol=2**-14)


def test_dtype_moves_keep_exact_grid_distances():
    vq = KohonenVectorQuantize(dim=2, codebook_size=12, grid=(3, 4))
    assert vq.grid_distances.dtype == torch.float32
    vq.half().double()
    assert vq.grid_distances.dtype == torch.float64
    np.testing.assert_array_equal(vq.grid_distances.numpy(), vq.grid.distances)
    assert vq.to("cpu").grid_distances.device.type == "cpu"


def test_a_float64_map_crosses_to_torch_and_back_bit_for_bit():
    """from_estimator rounded a float64 map to float32: at an offset of 1e8 codes moved by
    up to 3.6 (data spread 1) and two merged (found by an adversarial pass)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) + 1e8
    som = KSOM(
        grid=(3, 4), algorithm="minibatch", batch_size=40, decay=0.9, eps=1e-12, n_epochs=3, random_state=0
    )
    som.fit(X)
    vq = KohonenVectorQuantize.from_estimator(som)
    assert vq.codebook.dtype == torch.float64
    np.testing.assert_array_equal(vq.codebook.numpy(), som.codebook_)
    back = vq.to_estimator()
    np.testing.assert_array_equal(back.codebook_, som.codebook_)
    np.testing.assert_array_equal(back.ema_sum_, som.ema_sum_)
    vq.eval()
    np.testing.assert_array_equal(vq(torch.from_numpy(X))[1].numpy(), som.predict(X))
    batch = KSOM(grid=(3, 4), n_epochs=2, random_state=0).fit(X)  # a fresh EMA from its codebook
    np.testing.assert_array_equal(
        KohonenVectorQuantize.from_estimator(batch).ema_sum.numpy(), batch.codebook_
    )
