"""KSOM(grid="auto"): the SOM Toolbox rule (som_topol_struct), checked against the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from somvq import KSOM, load, save
from somvq.initialisation import initial_codebook
from somvq.parameters import auto_grid, som_toolbox_shape


def matlab_round(x):
    return math.floor(x + 0.5)


def toolbox_reference(n, X, hexagonal=False):
    """som_topol_struct.m, transcribed: munits, eigenvalue ratio, sides."""
    munits = math.ceil(5 * n**0.54321)
    C = np.cov(X.T)
    lam = np.sort(np.linalg.eigvals(C).real)
    if lam[-1] == 0 or lam[-2] * munits < lam[-1]:
        ratio = 1
    else:
        ratio = math.sqrt(lam[-1] / lam[-2])
    if hexagonal:
        cols = min(munits, matlab_round(math.sqrt(munits / ratio * math.sqrt(0.75))))
    else:
        cols = min(munits, matlab_round(math.sqrt(munits / ratio)))
    rows = matlab_round(munits / cols)
    return (rows, cols)


@pytest.mark.parametrize("n", [50, 178, 1000, 1797])
@pytest.mark.parametrize("stretch", [1.0, 3.0, 10.0, 40.0])
@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_auto_grid_follows_the_toolbox_formula(n, stretch, topology):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4)) * np.array([stretch, 1.0, 0.5, 0.1])
    grid = auto_grid(X, topology)
    assert grid.shape == toolbox_reference(n, X, topology == "hexagonal")
    assert abs(grid.n_units - math.ceil(5 * n**0.54321)) <= max(grid.shape)  # rounding of the sides
    if 3 <= stretch and stretch**2 <= math.ceil(5 * n**0.54321):
        assert grid.shape[0] > grid.shape[1]


def test_toolbox_shape_edge_cases():
    assert som_toolbox_shape(1, [1.0]) == (3, 2)  # 5 units: cols round(sqrt 5) = 2, rows round(2.5) = 3
    assert som_toolbox_shape(1000, [1.0, 0.0]) == som_toolbox_shape(1000, [1.0])
    # one feature, or a zero second eigenvalue: ratio 1, a square-ish map
    munits = math.ceil(5 * 1000**0.54321)
    rows, cols = som_toolbox_shape(1000, [3.0])
    assert cols == matlab_round(math.sqrt(munits)) and rows == matlab_round(munits / cols)
    # a cloud stretched beyond munits (l2 munits < l1): the toolbox's square map, not a strip
    assert som_toolbox_shape(10, [1e6, 1e-6]) == som_toolbox_shape(10, [1.0])
    assert som_toolbox_shape(200, [353.0, 1.0]) == (10, 9)  # munits 89: a 45x2 strip before
    # a 1-wide map is written (1, n): 5 units, l1 / l2 = 4.99 <= munits, cols round(1.497)
    assert som_toolbox_shape(1, [4.99, 1.0]) == (1, 5)
    # hexagonal and periodic along rows: the row count is made even
    X = np.random.default_rng(0).normal(size=(500, 3))
    for periodic in (True, False):
        grid = auto_grid(X, "hexagonal", periodic)
        if periodic:
            assert grid.shape[0] % 2 == 0


def test_ksom_auto_grid_fit_save_load_partial_fit(tmp_path, digits):
    X = digits[:600]
    som = KSOM(grid="auto", n_epochs=2, random_state=0).fit(X)
    assert som.grid_.shape == toolbox_reference(600, X)
    assert som.codebook_.shape == (som.grid_.n_units, X.shape[1])
    path = save(som, tmp_path / "m.somvq.npz")
    again = load(path)
    assert again.grid == "auto" and again.grid_ == som.grid_
    np.testing.assert_array_equal(again.codebook_, som.codebook_)
    som.partial_fit(X[:50])  # a later call keeps the chosen grid
    assert som.grid_.shape == toolbox_reference(600, X)
    fresh = KSOM(grid="auto", n_epochs=1).partial_fit(X[:100])
    assert fresh.grid_.shape == toolbox_reference(100, X[:100])
    assert KSOM(grid="auto").check_parameters() is None
    with pytest.raises(ValueError, match="grid_dim"):
        KSOM(grid="auto", grid_dim=3).check_parameters()
    with pytest.raises(ValueError):
        KSOM(grid="big").fit(X)


def test_pca_init_lies_on_the_plane_of_the_two_leading_components():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5)) * np.array([5.0, 2.0, 1.0, 0.5, 0.2])
    grid = auto_grid(X)
    codebook = initial_codebook("pca", X, grid, rng)
    centred = codebook - X.mean(axis=0)
    _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    residual = centred - centred @ vt[:2].T @ vt[:2]
    assert np.abs(residual).max() < 1e-9
    # the longer grid side runs along the first component
    coords = centred @ vt[:2].T
    assert np.ptp(coords[:, 0]) > np.ptp(coords[:, 1])
    assert grid.shape[0] > grid.shape[1]


def test_cli_fit_grid_auto(tmp_path):
    from click.testing import CliRunner

    from somvq.cli import main

    out = tmp_path / "m.somvq.npz"
    result = CliRunner().invoke(
        main, ["fit", "--dataset", "wine", "--standardize", "--grid", "auto", "-o", str(out), "--epochs", "2"]
    )
    assert result.exit_code == 0, result.output
    som = load(out)
    assert som.grid == "auto" and som.grid_.n_units >= math.ceil(5 * 178**0.54321) - max(som.grid_.shape)
