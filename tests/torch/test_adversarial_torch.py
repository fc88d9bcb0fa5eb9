"""Hostile inputs to the torch layers (issue 11, section 5): non-finite rows, unsound states.

A row holding NaN or +-inf must never reach the codebook: it is left out of every statistic,
so a batch with it trains exactly as the batch without it, and it is counted in
``n_nonfinite_rows``. ``load_state_dict`` refuses non-finite buffers, a negative step and a
state trained on another map with the same number of codes.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq.grids import Grid  # noqa: E402
from somvq.integrations.torch import GradientKohonenVectorQuantize, KohonenVectorQuantize  # noqa: E402

BAD_VALUES = [float("nan"), float("inf"), float("-inf")]


def _pair(**kwargs):
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=4, codebook_size=16, **kwargs)
    b = KohonenVectorQuantize(dim=4, codebook_size=16, **kwargs)
    b.load_state_dict(a.state_dict())
    return a, b


def _naive_bmu(row, codebook):
    """argmin of the float64 squared distances, non-finite entries read as 0 (documented)."""
    x = np.where(np.isfinite(row), row, 0.0).astype(np.float64)
    return int(((codebook.astype(np.float64) - x) ** 2).sum(1).argmin())


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize(
    "neighbourhood, update", [("hard", "all"), ("exponential", "all"), ("none", "all"), ("hard", "written")]
)
def test_a_non_finite_row_never_reaches_the_codebook(neighbourhood, update, bad):
    a, b = _pair(neighbourhood=neighbourhood, update=update)
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(40, 4, generator=generator)
    z[7, 2] = bad
    z[20] = bad  # a row that is entirely non-finite
    clean = torch.cat([z[:7], z[8:20], z[21:]])
    before = a.codebook.clone().numpy()
    quantized, indices, loss = a(z.clone().requires_grad_(True))
    qb, ib, lb = b(clean)
    # the statistics are those of the batch without the bad rows, bit for bit
    for name in ("codebook", "ema_count", "ema_sum", "step"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert bool(torch.isfinite(a.codebook).all())
    assert int(a.n_nonfinite_rows) == 2 and int(b.n_nonfinite_rows) == 0
    assert float(a.perplexity) == float(b.perplexity) and int(a.used_codes) == int(b.used_codes)
    # defined outputs: the BMU with non-finite entries read as 0, its code, finite loss
    for row in (7, 20):
        assert int(indices[row]) == _naive_bmu(z[row].numpy(), before)
        assert torch.equal(quantized[row], torch.from_numpy(before[int(indices[row])]))
    keep = [i for i in range(40) if i not in (7, 20)]
    assert torch.equal(indices[keep], ib) and torch.equal(quantized[keep].detach(), qb)
    # the loss leaves the bad rows out (their terms are 0; the mean is over all 40 rows)
    expected = 0.25 * ((z[keep].double() - torch.from_numpy(before)[ib].double()) ** 2).sum() / z.numel()
    assert np.isclose(float(loss.detach()), float(expected), rtol=1e-6)
    # later batches are unaffected
    for _ in range(3):
        x = torch.randn(32, 4, generator=generator)
        qa, ia, la = a(x)
        qb, ib, lb = b(x)
        assert torch.equal(qa, qb) and torch.equal(ia, ib) and torch.equal(la, lb)
        assert bool(torch.isfinite(la))


def test_gradient_of_a_non_finite_row_is_zero_and_finite():
    vq = KohonenVectorQuantize(dim=3, codebook_size=9)
    z = torch.randn(10, 3)
    z[4, 0] = float("nan")
    z.requires_grad_(True)
    quantized, _, loss = vq(z)
    ((quantized * 2.0).sum() + loss).backward()
    assert bool(torch.isfinite(z.grad).all())
    assert torch.equal(z.grad[4], torch.zeros(3))
    assert bool(torch.isfinite(quantized).all())


def test_eval_mode_counts_non_finite_rows_and_changes_nothing():
    vq = KohonenVectorQuantize(dim=4, codebook_size=16).eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    z = torch.randn(3, 5, 4)
    z[1, 2, 3] = float("inf")
    quantized, indices, loss = vq(z)
    assert int(vq.n_nonfinite_rows) == 1
    assert bool(torch.isfinite(quantized).all()) and bool(torch.isfinite(loss))
    for key, value in vq.state_dict().items():
        assert torch.equal(value, before[key]), key
    # usage is over the 14 finite rows
    counts = np.bincount(np.delete(indices.reshape(-1).numpy(), 7), minlength=16)
    p = counts / 14
    np.testing.assert_allclose(float(vq.perplexity), np.exp(-(p * np.log(p + 1e-10)).sum()), rtol=1e-5)


def test_a_batch_of_only_non_finite_rows_is_a_no_op_on_the_statistics():
    a, b = _pair(neighbourhood="hard")
    a(torch.full((5, 4), float("nan")))
    assert int(a.n_nonfinite_rows) == 5 and int(a.used_codes) == 0 and float(a.perplexity) == 1.0
    assert bool(torch.isfinite(a.codebook).all())
    # counts and sums 0: the EMA only decays (m <- 0.99 m), and the step advances
    assert torch.equal(a.ema_sum, 0.99 * b.ema_sum)
    assert int(a.step) == 1


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_gdsom_survives_non_finite_rows(bad):
    torch.manual_seed(0)
    vq = GradientKohonenVectorQuantize(dim=4, codebook_size=16, neighbourhood="exponential")
    optimiser = torch.optim.SGD(vq.parameters(), lr=0.1)
    for step in range(3):
        z = torch.randn(32, 4)
        if step == 0:
            z[5, 1] = bad
        z.requires_grad_(True)
        quantized, _, loss = vq(z)
        optimiser.zero_grad()
        (quantized.sum() + loss).backward()
        assert bool(torch.isfinite(loss)) and bool(torch.isfinite(vq.codebook.grad).all())
        assert bool(torch.isfinite(z.grad).all())
        optimiser.step()
        assert bool(torch.isfinite(vq.codebook).all())
    assert int(vq.n_nonfinite_rows) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_host_synchronisation_on_the_default_path():
    vq = KohonenVectorQuantize(dim=8, codebook_size=64).cuda()
    z = torch.randn(256, 8, device="cuda")
    z[3, 3] = float("nan")
    vq(z)  # warm-up (lazy initialisation)
    torch.cuda.set_sync_debug_mode("error")
    try:
        vq(z)
    finally:
        torch.cuda.set_sync_debug_mode(0)


# ------------------------------------------------------------------ load_state_dict
@pytest.mark.parametrize("name", ["codebook", "ema_sum", "ema_count"])
@pytest.mark.parametrize("bad", BAD_VALUES)
def test_load_state_dict_refuses_non_finite_buffers(name, bad):
    a, b = _pair()
    state = a.state_dict()
    state[name] = state[name].clone()
    state[name].view(-1)[3] = bad
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(RuntimeError, match=f"{name} holds NaN or infinite"):
        b.load_state_dict(state)
    for key, value in b.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing was copied


@pytest.mark.parametrize(
    ("source", "target", "scale"),
    [("double", "float", 1e40), ("float", "half", 1e5), ("double", "bfloat16", 1e300)],
)
def test_load_state_dict_refuses_values_beyond_the_modules_dtype(source, target, scale):
    """Finite in the state's dtype, infinite in the module's: a float64 state of 1e40 into a
    float32 layer loaded as +-inf codes, silently (found by a bug hunt). Refused, nothing
    copied; in range, the same state loads."""
    torch.manual_seed(0)
    a = getattr(KohonenVectorQuantize(dim=4, codebook_size=16), source)()
    b = getattr(KohonenVectorQuantize(dim=4, codebook_size=16), target)()
    state = {k: v.clone() for k, v in a.state_dict().items()}
    state["codebook"].view(-1)[5] = -scale
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(
        RuntimeError, match=r"codebook holds values beyond torch\.\w+'s range \(largest magnitude"
    ):
        b.load_state_dict(state)
    for key, value in b.state_dict().items():
        assert torch.equal(value, before[key]), key
    state["codebook"].view(-1)[5] = -1.5
    b.load_state_dict(state)
    assert float(b.codebook.view(-1)[5]) == -1.5


def test_load_state_dict_refuses_a_negative_step_and_negative_counts():
    a, b = _pair()
    with pytest.raises(RuntimeError, match="step=-3 is negative"):
        b.load_state_dict({**a.state_dict(), "step": torch.tensor(-3)})
    with pytest.raises(RuntimeError, match="step must be one integer"):
        b.load_state_dict({**a.state_dict(), "step": torch.tensor(2.5)})
    with pytest.raises(RuntimeError, match="ema_count holds negative"):
        b.load_state_dict({**a.state_dict(), "ema_count": -a.ema_count})
    assert int(b.step) == 0


@pytest.mark.parametrize(
    "other",
    [
        Grid((2, 8)),
        Grid((16,)),
        Grid((4, 4), topology="hexagonal"),
        Grid((4, 4), periodic=True),
        Grid((2, 2, 4)),
    ],
    ids=["2x8", "16", "hexagonal", "periodic", "2x2x4"],
)
def test_load_state_dict_refuses_another_map_with_the_same_size(other):
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=4, codebook_size=16, grid=(4, 4))
    a(torch.randn(30, 4))
    b = KohonenVectorQuantize(dim=4, codebook_size=16, grid=other)
    with pytest.raises(RuntimeError, match=r"trained on the map grid \(4, 4\) rectangular"):
        b.load_state_dict(a.state_dict())
    assert int(b.step) == 0
    # and the same map loads
    c = KohonenVectorQuantize(dim=4, codebook_size=16, grid=Grid((4, 4)))
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.codebook, a.codebook)


def test_a_state_written_before_grid_spec_still_loads():
    a, b = _pair()
    a(torch.randn(20, 4))
    state = {k: v for k, v in a.state_dict().items() if k != "grid_spec"}
    b.load_state_dict(state)
    assert torch.equal(b.codebook, a.codebook) and int(b.step) == 1


def test_gdsom_load_state_dict_refuses_a_non_finite_codebook_and_another_map():
    a = GradientKohonenVectorQuantize(dim=4, codebook_size=16, grid=(4, 4))
    b = GradientKohonenVectorQuantize(dim=4, codebook_size=16, grid=(4, 4))
    state = a.state_dict()
    state["codebook"] = state["codebook"].clone()
    state["codebook"][0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="codebook holds NaN"):
        b.load_state_dict(state)
    with pytest.raises(RuntimeError, match="trained on the map"):
        GradientKohonenVectorQuantize(dim=4, codebook_size=16, grid=(8, 2)).load_state_dict(a.state_dict())


def test_a_nested_quantizer_is_checked_with_its_prefix():
    outer = torch.nn.Sequential(KohonenVectorQuantize(dim=4, codebook_size=16))
    state = outer.state_dict()
    state["0.step"] = torch.tensor(-1)
    with pytest.raises(RuntimeError, match=r"0\.step=-1 is negative"):
        outer.load_state_dict(state)


@pytest.mark.parametrize("entry", ["codebook", "project_in.weight"])
def test_a_refused_state_leaves_the_projections_unchanged(entry):
    """The refusal went to torch's error list, raised only after torch had loaded the
    children: project_in / project_out took the refused state's weights, NaN included
    (found by an adversarial pass)."""
    torch.manual_seed(0)
    vq = KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=4)
    state = {
        k: v.clone()
        for k, v in KohonenVectorQuantize(dim=8, codebook_size=16, codebook_dim=4).state_dict().items()
    }
    state[entry].view(-1)[1] = float("nan")
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    with pytest.raises(RuntimeError, match=f"{entry} holds NaN or infinite"):
        vq.load_state_dict(state)
    for key, value in vq.state_dict().items():
        assert torch.equal(value, before[key]), key
    parent = torch.nn.Sequential(vq)  # the quantizer inside a model: the same
    with pytest.raises(RuntimeError, match=f"0.{entry} holds NaN or infinite"):
        parent.load_state_dict({f"0.{k}": v for k, v in state.items()})
    for key, value in vq.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("convert", ["half", "bfloat16"])
def test_half_modules_keep_float32_statistics(convert):
    """.half() turned the EMA sums into float16: on pixel-range data they passed 65504
    and a code became inf, silently (found by an adversarial pass). The statistics stay
    float32, moved from their exact values; .double() still makes them float64."""
    torch.manual_seed(0)
    vq = KohonenVectorQuantize(dim=4, codebook_size=16)
    ema_sum = vq.ema_sum.clone()
    getattr(vq, convert)()
    for name in ("ema_sum", "ema_count", "usage_ring"):
        assert getattr(vq, name).dtype == torch.float32, name
    assert torch.equal(vq.ema_sum, ema_sum)
    X = (torch.rand(4096, 4, generator=torch.Generator().manual_seed(1)) * 255).to(vq.codebook.dtype)
    for _ in range(100):
        vq(X)
    assert float(vq.ema_sum.max()) > 65504  # beyond float16
    assert bool(torch.isfinite(vq.codebook).all())
    vq.double()
    assert vq.ema_sum.dtype == torch.float64 and vq.codebook.dtype == torch.float64


def test_from_a_batch_map_keeps_its_codebook_at_the_first_step():
    """from_estimator resolved the batch map's decay="auto" from its own fit (10 epochs:
    decay 0): the first training step replaced the codebook by that batch's statistics
    (found by an adversarial pass). A batch or online map now starts with decay 0.99."""
    from somvq import KSOM

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(400, 4)) * 10 + 100).astype(np.float32)
    som = KSOM(grid=(8, 8), neighbourhood="none", random_state=0).fit(X)
    vq = KohonenVectorQuantize.from_estimator(som)
    assert vq.decay == 0.99
    before = vq.codebook.clone()
    vq(torch.from_numpy(X[:16]))
    assert float((vq.codebook - before).norm(dim=1).max()) < 1.0
    assert KohonenVectorQuantize.from_estimator(KSOM(grid=(8, 8), decay=0.5, n_epochs=1).fit(X)).decay == 0.5


def test_a_state_of_the_wrong_size_changes_nothing():
    """torch copied tensor by tensor and reported the size mismatch at the end: step,
    codebook and EMA state were already the other run's (found by an adversarial pass)."""
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=4, codebook_size=12, grid=(3, 4))
    for _ in range(3):
        a(torch.randn(9, 4) + 3)
    b = KohonenVectorQuantize(dim=4, codebook_size=12, grid=(3, 4))
    before = {k: v.clone() for k, v in b.state_dict().items()}
    for bad in ({"ema_sum": a.ema_sum[:6]}, {"step": a.step.reshape(1, 1)}):
        for strict in (True, False):
            with pytest.raises(RuntimeError, match="size mismatch"):
                b.load_state_dict({**a.state_dict(), **bad}, strict=strict)
            assert all(torch.equal(v, before[k]) for k, v in b.state_dict().items())


def test_another_usage_window_loads_with_an_empty_window():
    """usage_window is a monitoring option: a state of another window was unloadable."""
    torch.manual_seed(0)
    a = KohonenVectorQuantize(dim=4, codebook_size=12, grid=(3, 4), usage_window=50)
    for _ in range(5):
        a(torch.randn(9, 4) + 3)
    b = KohonenVectorQuantize(dim=4, codebook_size=12, grid=(3, 4))
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.codebook, a.codebook) and int(b.step) == 5
    assert not b.usage_ring.any()


def test_a_codebook_loaded_alone_restarts_the_ema_from_it():
    """With strict=False a codebook alone was replaced at the next step by the old m / N."""
    torch.manual_seed(0)
    W = torch.randn(12, 4) + 50
    vq = KohonenVectorQuantize(dim=4, codebook_size=12, grid=(3, 4), init_count=1.0)
    vq.load_state_dict({"codebook": W}, strict=False)
    assert torch.equal(vq.ema_sum, W) and torch.all(vq.ema_count == 1.0)
    vq(W[torch.randint(0, 12, (64,))] + 0.01 * torch.randn(64, 4))
    assert float((vq.codebook - W).abs().max()) < 5.0  # was 42.5: back near the random init
