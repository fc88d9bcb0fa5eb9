import numpy as np
import pytest

from somvq import KSOM
from somvq.grids import Grid, auto_grid_shape, parse_grid, reference_grid_factors

from . import naive


@pytest.mark.parametrize(
    "n_units, dim, expected",
    [
        (512, 2, [32, 16]),
        (1024, 2, [32, 32]),
        (256, 2, [16, 16]),
        (128, 2, [16, 8]),
        (64, 3, [4, 4, 4]),
        (7, 2, [7, 1]),
        (512, 1, [512]),
    ],
)
def test_reference_automatic_shapes(n_units, dim, expected):
    assert reference_grid_factors(n_units, dim) == expected
    assert reference_grid_factors(n_units, dim) == naive.reference_factors(n_units, dim)
    assert auto_grid_shape(n_units, dim) == tuple(reversed(expected))


@pytest.mark.parametrize("n_units", [6, 24, 100, 128, 125, 512, 1000])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_auto_shape_matches_transcribed_reference(n_units, dim):
    assert reference_grid_factors(n_units, dim) == naive.reference_factors(n_units, dim)


@pytest.mark.parametrize("n_units, dim", [(512, 2), (128, 2), (64, 3), (10, 1)])
def test_c_order_auto_grid_has_reference_distances_unit_for_unit(n_units, dim):
    """Unit i of somvq's auto grid has exactly the neighbours of unit i in the reference."""
    ours = Grid.from_size(n_units, dim).distances
    reference = naive.reference_order_distances(reference_grid_factors(n_units, dim))
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_index_coordinate_round_trip_is_c_order():
    g = Grid((3, 4, 5))
    for k in [0, 1, 7, 59]:
        assert g.index_of(g.indices[k]) == k
    assert g.indices[1].tolist() == [0, 0, 1]  # last axis fastest
    with pytest.raises(ValueError, match="outside the grid"):
        g.index_of((3, 0, 0))


@pytest.mark.parametrize("periodic", [False, True])
def test_rectangular_distances(periodic):
    g = Grid((4, 5), periodic=periodic)
    np.testing.assert_allclose(g.distances, naive.grid_distances((4, 5), "rectangular", periodic))


@pytest.mark.parametrize(
    "shape, topology, periodic",
    [
        ((4, 6), "rectangular", (False, True)),
        ((3, 4, 2), "rectangular", (True, False, True)),
        ((9,), "rectangular", True),
        ((4, 3), "hexagonal", False),
        ((5, 4), "hexagonal", False),
        ((4, 5), "hexagonal", (False, True)),
        ((4, 5), "hexagonal", (True, False)),
        ((6, 6), "hexagonal", True),
    ],
)
def test_distances_equal_the_independent_transcription(shape, topology, periodic):
    g = Grid(shape, topology, periodic)
    np.testing.assert_allclose(
        g.distances, naive.grid_distances(shape, topology, periodic), rtol=1e-15, atol=1e-15
    )


def test_per_axis_periodicity():
    g = Grid((4, 6), periodic=(False, True))
    a, b = g.index_of((0, 0)), g.index_of((0, 5))
    assert g.distances[a, b] == 1.0  # wraps along columns
    a, b = g.index_of((0, 0)), g.index_of((3, 0))
    assert g.distances[a, b] == 3.0  # does not wrap along rows


def test_rectangular_adjacency_is_eight_neighbourhood():
    g = Grid((5, 5))
    counts = g.adjacency.sum(1).reshape(5, 5)
    assert counts[2, 2] == 8 and counts[0, 0] == 3 and counts[0, 2] == 5
    assert Grid((5, 5), periodic=True).adjacency.sum(1).tolist() == [8] * 25
    assert Grid((7,)).adjacency.sum(1).tolist() == [1, 2, 2, 2, 2, 2, 1]


def test_hexagonal_grid_has_six_neighbours_at_unit_distance():
    g = Grid((6, 6), topology="hexagonal")
    inner = [g.index_of((r, c)) for r in range(1, 5) for c in range(1, 5)]
    assert all(g.adjacency[k].sum() == 6 for k in inner)
    for k in inner:
        np.testing.assert_allclose(g.distances[k][g.adjacency[k]], 1.0)
    # odd rows are shifted right: (1, 0) touches (0, 0) and (0, 1)
    assert set(g.neighbours(g.index_of((1, 0)))) >= {g.index_of((0, 0)), g.index_of((0, 1))}
    torus = Grid((6, 6), topology="hexagonal", periodic=True)
    assert torus.adjacency.sum(1).tolist() == [6] * 36
    np.testing.assert_allclose(torus.distances, torus.distances.T)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (0, 3)}, "positive"),
        ({"shape": (3, 3), "topology": "triangular"}, "topology"),
        ({"shape": (3, 3, 3), "topology": "hexagonal"}, "2 axes"),
        ({"shape": (3, 3), "periodic": (True,)}, "one bool per grid axis"),
        ({"shape": (5, 4), "topology": "hexagonal", "periodic": True}, "even number of rows"),
        # products beyond int64 used to wrap around (0 or 4 units: an empty map, then heap
        # corruption in the kernels)
        ({"shape": (2**32, 2**32)}, r"18446744073709551616 units, more than the 2147483647"),
        ({"shape": (2**62 + 1, 4)}, "units, more than"),
        ({"shape": (2**31,)}, "units, more than"),
    ],
)
def test_bad_grids(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs)


def test_huge_grids_are_refused_before_any_work():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="more than"):
        KSOM(grid=(2**32, 2**32), neighbourhood="none", n_epochs=1).fit(X)
    # an automatic shape is refused before its (otherwise endless) factorisation
    with pytest.raises(ValueError, match=r"at most 2147483647 \(2\^31 - 1\), got 1000000000000000009"):
        KSOM(grid=10**18 + 9, n_epochs=1).fit(X)
    assert Grid((46340, 46340)).n_units == 46340**2


def test_parse_grid():
    assert parse_grid("16x32") == (16, 32)
    assert parse_grid(" 4 X 5 x 6 ") == (4, 5, 6)
    assert parse_grid("512") == (512,)
    for bad in ["16xa", "", "0x3", "-2x4"]:
        with pytest.raises(ValueError, match="grid="):
            parse_grid(bad)
