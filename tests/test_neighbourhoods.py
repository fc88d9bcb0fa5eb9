import numpy as np
import pytest

from somvq import KSOM
from somvq.grids import Grid
from somvq.neighbourhoods import NEIGHBOURHOODS, Neighbourhood, neighbourhood_weights
from somvq.schedules import SCHEDULES, Schedule

from . import naive

STEPS = [0, 1, 7, 100, 10_000]


@pytest.mark.parametrize("t", STEPS)
@pytest.mark.parametrize("shape", [(6, 4), (9,), (3, 4, 2)])
def test_paper_hard_neighbourhood(t, shape):
    d = Grid(shape).distances
    nb = Neighbourhood("hard", Schedule("inverse_time", 1.0), shrink=0.1)
    np.testing.assert_allclose(
        nb.matrix(d, t), naive.paper_hard(naive.grid_distances(shape), t, 0.1), rtol=1e-15
    )


def test_hard_neighbourhood_values_by_hand():
    g = Grid((6, 4))
    centre = g.index_of((2, 2))
    nb = Neighbourhood("hard", Schedule("inverse_time", 1.0), shrink=0.1)
    row = nb.matrix(g.distances, 10)[centre].reshape(6, 4)
    expected = np.zeros((6, 4))
    expected[1:4, 1:4] = 0.5  # 1 / (1 + 0.1 * 10), diagonals included
    expected[2, 2] = 1.0
    np.testing.assert_allclose(row, expected)
    # at t = 0 the neighbour weight is 1 whatever the shrink is
    fast = Neighbourhood("hard", Schedule("inverse_time", 1.0), shrink=50.0)
    assert fast.matrix(g.distances, 0)[centre].sum() == 9


@pytest.mark.parametrize("t", STEPS)
@pytest.mark.parametrize("sigma", [10.0, 3.0])
def test_paper_exponential_neighbourhood(t, sigma):
    d = Grid((8, 4)).distances
    nb = Neighbourhood("exponential", Schedule("inverse_time", sigma, shrink=0.1), shrink=0.1)
    expected = naive.paper_exponential(naive.grid_distances((8, 4)), t, 0.1, sigma)
    np.testing.assert_allclose(nb.matrix(d, t), expected, rtol=1e-12, atol=1e-300)


def test_paper_exponential_underflows_to_ema_vq_in_float32():
    """In float32, exp(-d (1 + 0.1 t) / 10) is exactly 0 for d = 1 after about 10.3k steps."""
    d = Grid((4, 4)).distances
    nb = Neighbourhood("exponential", Schedule("inverse_time", 10.0, shrink=0.1), shrink=0.1)
    assert nb.matrix(d, 10_000, dtype=np.float32)[0, 1] > 0
    H = nb.matrix(d, 10_500, dtype=np.float32)
    np.testing.assert_array_equal(H, np.eye(16, dtype=np.float32))


@pytest.mark.parametrize("kind", ["gaussian", "bubble", "triangle", "cut_gaussian", "mexican_hat"])
@pytest.mark.parametrize("r", [0.5, 1.0, 2.5])
def test_classic_neighbourhoods(kind, r):
    d = Grid((5, 7), periodic=True).distances
    expected = naive.classic(naive.grid_distances((5, 7), periodic=True), kind, r)
    np.testing.assert_allclose(neighbourhood_weights(d, kind, radius=r), expected, atol=1e-15)


def test_none_is_identity():
    d = Grid((3, 3)).distances
    np.testing.assert_array_equal(neighbourhood_weights(d, "none"), np.eye(9))


@pytest.mark.parametrize("kind", NEIGHBOURHOODS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("t", [0, 3, 40, 1000])
def test_numba_mirror_equals_python_definitions(kind, schedule, t):
    from somvq._kernels.cpu_neighbourhood import kernel_value, schedule_value

    sched = Schedule(schedule, 4.0, 0.5, shrink=0.3, horizon=50)
    nb = Neighbourhood(kind, sched, shrink=0.2)
    assert schedule_value(sched.code, 4.0, 0.5, 0.3, 50.0, float(t)) == pytest.approx(sched(t), rel=1e-14)
    d = Grid((4, 5), topology="hexagonal").distances
    expected = nb.matrix(d, t)
    radius, hard = sched(t), nb.hard_weight(t)
    mirrored = np.array([[kernel_value(nb.code, x, radius, hard) for x in row] for row in d])
    np.testing.assert_allclose(mirrored, expected, rtol=1e-13, atol=1e-300)


def test_schedules_by_hand():
    assert Schedule("inverse_time", 10.0, shrink=0.1)(10) == 5.0
    lin = Schedule("linear", 4.0, 1.0, horizon=3)
    assert [lin(t) for t in range(5)] == [4.0, 3.0, 2.0, 1.0, 1.0]
    exp = Schedule("exponential", 8.0, 2.0, horizon=2)
    assert (
        exp(0) == 8.0
        and exp(1) == pytest.approx(4.0)
        and exp(2) == pytest.approx(2.0)
        and exp(9) == pytest.approx(2.0)
    )
    assert Schedule("constant", 3.0)(1e6) == 3.0
    with pytest.raises(ValueError, match="positive start and end"):
        Schedule("exponential", 1.0, 0.0)
    with pytest.raises(ValueError, match="not one of"):
        Schedule("cosine", 1.0)


@pytest.mark.parametrize("kind", ["exponential", "linear"])
@pytest.mark.parametrize(("start", "end"), [(49.0, 1.0), (49.0, 0.5), (49.0, 2.0), (0.1, 0.3), (7.0, 0.01)])
def test_schedules_reach_their_end_exactly(kind, start, end):
    # 49 * (1 / 49) ** 1.0 is 0.9999999999999999: a bubble of radius 1 would drop every
    # neighbour at distance 1 on the last step
    import torch

    from somvq._kernels.cpu_neighbourhood import schedule_value

    sched = Schedule(kind, start, end, horizon=7)
    for t in (7, 7.0, 8, 1e9):
        assert sched(t) == end
        assert schedule_value(sched.code, start, end, 0.1, 7.0, float(t)) == end
    assert np.all(sched(np.array([7.0, 9.0])) == end)
    assert bool((sched(torch.tensor([7.0, 9.0], dtype=torch.float64)) == end).all())


def test_last_batch_step_of_an_exponential_bubble_uses_the_end_radius():
    # two epochs: radius 49 then the end radius, under either schedule (the same map)
    X = np.random.default_rng(0).normal(size=(300, 2))
    init = X[:98].copy()
    fits = [
        KSOM(
            grid=(98,),
            neighbourhood="bubble",
            radius=49.0,
            radius_final=1.0,
            radius_schedule=kind,
            n_epochs=2,
            init=init,
        )
        .fit(X)
        .codebook_
        for kind in ("exponential", "linear")
    ]
    np.testing.assert_array_equal(fits[0], fits[1])


def test_same_definitions_on_torch_tensors():
    torch = pytest.importorskip("torch")
    d = Grid((4, 4)).distances
    for kind in ["hard", "exponential", "gaussian", "triangle"]:
        nb = Neighbourhood(kind, Schedule("inverse_time", 3.0, shrink=0.1), shrink=0.1)
        t = torch.tensor(12.0, dtype=torch.float64)
        np.testing.assert_allclose(
            nb.weights(torch.from_numpy(d.copy()), t).numpy(), nb.matrix(d, 12), rtol=1e-12
        )


def test_kernel_codes_are_the_python_codes():
    """The compiled formulas (CPU and CUDA share one source) use the modules' own codes."""
    from somvq._kernels import neighbourhood_formulas as formulas
    from somvq.grids import NEIGHBOUR_RADIUS
    from somvq.neighbourhoods import NEIGHBOURHOOD_CODES
    from somvq.schedules import SCHEDULE_CODES

    assert {name: getattr(formulas, name.upper()) for name in NEIGHBOURHOOD_CODES} == NEIGHBOURHOOD_CODES
    renamed = {"exponential": "EXPONENTIAL_SCHEDULE"}
    assert {n: getattr(formulas, renamed.get(n, n.upper())) for n in SCHEDULE_CODES} == SCHEDULE_CODES
    assert formulas.NEIGHBOUR_RADIUS == NEIGHBOUR_RADIUS
