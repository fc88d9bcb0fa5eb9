"""Map analysis (somvq.analysis): clusters of units, labels of units, each against a naive reference."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

import somvq
from somvq import KSOM
from somvq.analysis import cluster_samples, cluster_units, fill_from_neighbours, label_units
from somvq.grids import Grid

from .naive import grid_distances


class FakeMap:
    """A 'fitted' map with a given codebook (no training needed)."""

    def __init__(self, codebook, grid):
        self.codebook_ = np.asarray(codebook, dtype=np.float64)
        self.grid_ = grid

    def fit(self, X):  # pragma: no cover - makes it an estimator for check_is_fitted
        return self

    def predict(self, X):
        d = ((np.asarray(X, float)[:, None, :] - self.codebook_[None]) ** 2).sum(-1)
        return d.argmin(axis=1)


def naive_adjacency(grid):
    d = grid_distances(grid.shape, grid.topology, grid.periodic)
    return (d > 0) & (d < 1.5)


def components_within(labels, adjacency):
    """Number of connected components of each cluster's subgraph (naive: dense adjacency)."""
    out = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n, _ = connected_components(adjacency[np.ix_(members, members)].astype(int), directed=False)
        out.append(n)
    return out


def naive_single_linkage(codebook, adjacency, n_clusters):
    """Merge the two clusters joined by the shortest grid edge, until n_clusters remain."""
    K = codebook.shape[0]
    clusters = [{k} for k in range(K)]
    w = np.sqrt(((codebook[:, None] - codebook[None]) ** 2).sum(-1))
    while len(clusters) > n_clusters:
        best = (np.inf, None, None)
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                for a in clusters[i]:
                    for b in clusters[j]:
                        if adjacency[a, b] and w[a, b] < best[0]:
                            best = (w[a, b], i, j)
        _, i, j = best
        clusters[i] |= clusters.pop(j)
    labels = np.empty(K, dtype=int)
    for c, members in enumerate(clusters):
        labels[list(members)] = c
    return labels


def same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


GRIDS = [Grid((5, 6)), Grid((4, 5), "hexagonal"), Grid((6, 4), periodic=True), Grid((12,))]


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
@pytest.mark.parametrize("method", ["agglomerative", "umatrix"])
@pytest.mark.parametrize("n_clusters", [2, 3, 7])
def test_grid_methods_give_contiguous_clusters(grid, method, n_clusters):
    rng = np.random.default_rng(n_clusters)
    som = FakeMap(rng.normal(size=(grid.n_units, 3)), grid)
    labels = cluster_units(som, n_clusters, method=method)
    assert labels.shape == (grid.n_units,) and labels.dtype == np.int64
    assert sorted(np.unique(labels).tolist()) == list(range(n_clusters))
    assert components_within(labels, naive_adjacency(grid)) == [1] * n_clusters
    assert labels[0] == 0  # numbered by first appearance


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
@pytest.mark.parametrize("n_clusters", [1, 2, 4, 9])
def test_umatrix_method_is_single_linkage_on_the_grid_graph(grid, n_clusters):
    rng = np.random.default_rng(7)
    codebook = rng.normal(size=(grid.n_units, 2))
    labels = cluster_units(FakeMap(codebook, grid), n_clusters, method="umatrix")
    ref = naive_single_linkage(codebook, naive_adjacency(grid), n_clusters)
    assert same_partition(labels, ref)


def test_agglomerative_with_full_connectivity_matches_plain_sklearn_on_a_chain():
    # On a 1-D chain whose codebook is ordered, ward with chain connectivity equals plain ward.
    from sklearn.cluster import AgglomerativeClustering

    grid = Grid((20,))
    codebook = np.cumsum(np.random.default_rng(3).uniform(0.1, 2.0, size=(20, 1)), axis=0)
    labels = cluster_units(FakeMap(codebook, grid), 4)
    ref = AgglomerativeClustering(n_clusters=4).fit_predict(codebook)
    assert same_partition(labels, ref)


def test_kmeans_method_is_kmeans_on_the_codebook():
    from sklearn.cluster import KMeans

    grid = Grid((6, 6))
    codebook = np.random.default_rng(1).normal(size=(36, 4))
    labels = cluster_units(FakeMap(codebook, grid), 5, method="kmeans", random_state=0)
    ref = KMeans(5, n_init=10, random_state=0).fit_predict(codebook)
    assert same_partition(labels, ref)


def test_separated_blobs_are_found_and_empty_units_get_a_cluster(digits):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = rng.integers(0, 3, size=600)
    X = centres[y] + rng.normal(scale=0.3, size=(600, 2))
    som = KSOM(grid=(8, 8), n_epochs=20, random_state=0).fit(X)
    used = np.bincount(som.predict(X), minlength=64) > 0
    assert not used.all()  # some units sit between the blobs
    for method in ["agglomerative", "umatrix", "kmeans"]:
        clusters = cluster_units(som, 3, method=method, random_state=0)
        assert clusters.shape == (64,) and (clusters >= 0).all()  # empty units too
        from sklearn.metrics import adjusted_rand_score

        assert adjusted_rand_score(y, cluster_samples(som, X, clusters)) > 0.99, method
    np.testing.assert_array_equal(cluster_samples(som, X, clusters), clusters[som.predict(X)])


def test_cluster_units_bad_input():
    som = FakeMap(np.zeros((6, 2)), Grid((2, 3)))
    for bad in [0, 7, 2.5, True, None]:
        with pytest.raises(ValueError, match="n_clusters"):
            cluster_units(som, bad)
    with pytest.raises(ValueError, match="method='ward'"):
        cluster_units(som, 2, method="ward")
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        cluster_samples(som, np.zeros((3, 2)), np.zeros(5, int))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        cluster_units(KSOM(), 2)


def naive_label_units(bmus, y, K):
    out = []
    for k in range(K):
        won = [int(v) for v, b in zip(y, bmus) if b == k]
        if not won:
            out.append(-1)
            continue
        count = Counter(won)
        top = max(count.values())
        out.append(min(v for v, c in count.items() if c == top))
    return np.array(out)


def naive_fill(labels, adjacency):
    labels = labels.copy()
    while (labels < 0).any():
        new = labels.copy()
        for k in np.flatnonzero(labels < 0):
            around = [labels[j] for j in np.flatnonzero(adjacency[k]) if labels[j] >= 0]
            if around:
                count = Counter(around)
                top = max(count.values())
                new[k] = min(v for v, c in count.items() if c == top)
        if (new == labels).all():
            break
        labels = new
    return labels


@pytest.mark.parametrize("grid", GRIDS, ids=repr)
def test_label_units_against_naive(grid):
    rng = np.random.default_rng(5)
    codebook = rng.normal(size=(grid.n_units, 2))
    som = FakeMap(codebook, grid)
    X = rng.normal(size=(40, 2))  # few rows: many empty units
    y = rng.integers(0, 4, size=40) * 3  # labels 0, 3, 6, 9: not 0..n-1
    labels = label_units(som, X, y)
    ref = naive_label_units(som.predict(X), y, grid.n_units)
    np.testing.assert_array_equal(labels, ref)
    assert (labels == -1).any()
    filled = label_units(som, X, y, fill="neighbours")
    np.testing.assert_array_equal(filled, naive_fill(ref, naive_adjacency(grid)))
    assert (filled >= 0).all()
    np.testing.assert_array_equal(fill_from_neighbours(ref, grid), filled)


def test_fill_keeps_all_empty_and_label_bad_input():
    grid = Grid((3, 3))
    np.testing.assert_array_equal(fill_from_neighbours(np.full(9, -1), grid), np.full(9, -1))
    som = FakeMap(np.zeros((9, 2)), grid)
    with pytest.raises(ValueError, match="non-negative integer"):
        label_units(som, np.zeros((2, 2)), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="-1"):
        label_units(som, np.zeros((2, 2)), np.array([0, -1]))
    with pytest.raises(ValueError, match="3 rows but y has 2"):
        label_units(som, np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="fill='nearest'"):
        label_units(som, np.zeros((2, 2)), np.array([0, 1]), fill="nearest")


def test_top_level_names_are_lazy():
    assert somvq.cluster_units is cluster_units and somvq.label_units is label_units
    assert somvq.cluster_samples is cluster_samples


def test_labels_of_any_size_that_int64_holds():
    """unit * (max label + 1) overflowed int64 for labels above ~9e18 / K (fill gave garbage),
    and uint64 labels >= 2^63 came back negative (found by an adversarial pass)."""
    X = np.zeros((10, 2))
    som = KSOM(grid=(1, 4), neighbourhood="none", init=np.array([[0.0, 0], [5, 5], [6, 6], [7, 7]])).fit(X)
    np.testing.assert_array_equal(label_units(som, X, np.full(10, 2**62), fill="neighbours"), [2**62] * 4)
    for y in (np.full(10, 2**63 + 5, dtype=np.uint64), np.full(10, 1e19)):
        with pytest.raises(ValueError, match="beyond int64's range"):
            label_units(som, X, y)
    np.testing.assert_array_equal(
        label_units(som, X, np.full(10, 7, dtype=np.uint64), fill="neighbours"), [7] * 4
    )


def test_unsigned_labels_leave_units_without_rows_at_minus_one():
    """uint8 labels (load_dataset's IDX sets: MNIST, Fashion-MNIST) gave empty units the
    label 255, which fill="neighbours" then left alone (found by an adversarial pass)."""
    X = np.zeros((10, 2))
    som = KSOM(grid=(1, 4), neighbourhood="none", init=np.array([[0.0, 0], [5, 5], [6, 6], [7, 7]])).fit(X)
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        y = np.full(10, 3, dtype=dtype)
        np.testing.assert_array_equal(label_units(som, X, y), [3, -1, -1, -1])
        np.testing.assert_array_equal(label_units(som, X, y, fill="neighbours"), [3, 3, 3, 3])


def test_label_and_fill_bad_input_is_named():
    grid = Grid((3, 3))
    X = np.zeros((2, 2))
    som = FakeMap(np.zeros((9, 2)), grid)
    with pytest.raises(ValueError, match=r"y holds nan at row 1; every row needs an integer label"):
        label_units(som, X, np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="beyond int64's range"):  # 2**63 was taken for int64's max
        label_units(som, X, np.array([0.0, 2.0**63]))
    for empty in (np.array([], np.uint8), np.array([]), np.array([], np.int64)):  # (found by a bug hunt)
        with pytest.raises(ValueError, match="X has 2 rows but y has 0 labels"):
            label_units(som, X, empty)  # not "zero-size array to reduction operation maximum"
    with pytest.raises(ValueError, match=r"unit_labels has shape \(10,\); the grid has 9 units"):
        fill_from_neighbours(np.r_[np.full(9, -1), 2], grid)
    with pytest.raises(ValueError, match=r"unit_labels has shape \(3, 3\)"):
        fill_from_neighbours(np.full((3, 3), -1), grid)
    with pytest.raises(ValueError, match="integer labels .* got dtype float64"):
        fill_from_neighbours(np.r_[np.full(8, -1.0), 2.5], grid)


def test_supervised_maps_are_refused_by_name():
    from somvq import KSOMClassifier

    X = np.random.default_rng(0).normal(size=(30, 3))
    clf = KSOMClassifier(grid=(3, 3), n_epochs=2, random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    for call in (lambda: cluster_units(clf, 2), lambda: label_units(clf, X, np.zeros(30, dtype=int))):
        with pytest.raises(TypeError, match="got a fitted KSOMClassifier: supervised maps are not supported"):
            call()
