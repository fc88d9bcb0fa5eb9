"""Map analysis after training: clusters of units and labels of units (docs/analysis.md).

A trained map has K units, usually many more than the groups in the data. These functions
group the *units* (a clustering of K codebook vectors, cheap whatever the number of rows)
and give every sample the cluster of its best-matching unit; they label units with the
majority class of the rows they won. Every unit gets a cluster, including the units that
won no row (on a map they sit between the clusters).

>>> clusters = cluster_units(som, 10)  # doctest: +SKIP
>>> row_clusters = cluster_samples(som, X, clusters)  # doctest: +SKIP
>>> labels = label_units(som, X, y, fill="neighbours")  # doctest: +SKIP

``clusters`` holds (K,) ints in [0, 10); ``row_clusters`` is ``clusters[som.predict(X)]``.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from .grids import Grid

__all__ = [
    "CLUSTER_METHODS",
    "cluster_units",
    "cluster_samples",
    "label_units",
    "fill_from_neighbours",
    "grid_connectivity",
]

#: The methods of :func:`cluster_units`.
CLUSTER_METHODS = ("agglomerative", "kmeans", "umatrix")


def _fitted(som: Any) -> tuple[np.ndarray, Grid]:
    """The codebook (float64) and grid of a fitted estimator; a clear error otherwise."""
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(som, "codebook_"):
        if hasattr(som, "som_"):
            raise TypeError(
                f"expected a map fitted without targets (a KSOM), got a fitted {type(som).__name__}: "
                "supervised maps are not supported here (their map, som_, also holds the target columns)."
            )
        check_is_fitted(som, "codebook_")  # NotFittedError for an unfitted KSOM
        raise TypeError(f"expected a fitted map (with codebook_ and grid_), got {type(som).__name__}.")
    return np.asarray(som.codebook_, dtype=np.float64), som.grid_


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels by first appearance (unit 0's cluster is 0): deterministic output."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse.ravel()].astype(np.int64)


def grid_connectivity(grid: Grid) -> Any:
    """Sparse (K, K) CSR matrix of grid neighbours, built from :attr:`Grid.neighbour_pairs` in O(K).

    The connectivity given to scikit-learn's ``AgglomerativeClustering``: two units may be
    merged directly only if they are grid neighbours (8 around a unit on a rectangular 2-D
    grid, 6 on a hexagonal one, wrapping on periodic axes).
    """
    from scipy import sparse

    rows, cols = grid.neighbour_pairs
    n_units = grid.n_units
    return sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_units, n_units))


def _umatrix_clusters(codebook: np.ndarray, grid: Grid, n_clusters: int) -> np.ndarray:
    """Single linkage on the grid graph (Kruskal): merge along the lowest U-matrix boundaries.

    Edges are the grid-neighbour pairs weighted by ``||w_k - w_l||``; taken in increasing
    weight (ties: the lower pair ``(k, l)`` first), each edge joining two different
    clusters merges them, until ``n_clusters`` remain. Equivalently: cut the
    ``n_clusters - 1`` heaviest edges of the grid graph's minimum spanning tree.
    """
    from .distances import underflow_scaled

    rows, cols = grid.neighbour_pairs
    keep = rows < cols  # each undirected edge once
    rows, cols = rows[keep], cols[keep]
    # float64, in units of a power of two where the squares would underflow (the order of
    # the edges is all that matters: below ~1e-154 every weight was 0, a tie)
    w = np.asarray(codebook, dtype=np.float64)
    w = underflow_scaled(w, w)[1]
    weight = np.sqrt(((w[rows] - w[cols]) ** 2).sum(axis=1))
    order = np.lexsort((cols, rows, weight))
    parent = np.arange(grid.n_units)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    n_components = grid.n_units
    for edge in order:
        if n_components <= n_clusters:
            break
        a, b = find(int(rows[edge])), find(int(cols[edge]))
        if a != b:
            parent[max(a, b)] = min(a, b)
            n_components -= 1
    return np.array([find(k) for k in range(grid.n_units)])


def cluster_units(
    som: Any,
    n_clusters: int,
    method: str = "agglomerative",
    *,
    linkage: str = "ward",
    random_state: Any = None,
) -> np.ndarray:
    """Cluster the units of a fitted map; shape ``(K,)`` int64, values ``0 .. n_clusters - 1``.

    Parameters
    ----------
    som : KSOM
        A fitted map (anything with ``codebook_`` and ``grid_``).
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= K``.
    method : {"agglomerative", "kmeans", "umatrix"}
        ``"agglomerative"``: scikit-learn's ``AgglomerativeClustering`` of the codebook with
        the grid adjacency as connectivity (:func:`grid_connectivity`), so every cluster is
        a connected region of the map. ``"kmeans"``: scikit-learn's ``KMeans`` (``n_init=10``)
        on the codebook vectors, ignoring the grid (clusters may be split on the map).
        ``"umatrix"``: single linkage on the grid graph whose edge weights are the codebook
        distances of neighbouring units (the quantities the U-matrix averages): merge along
        the lowest boundaries first, i.e. cut the ``n_clusters - 1`` highest edges of the
        minimum spanning tree; connected regions too (ties: lower unit pair first).
    linkage : str
        Linkage of ``"agglomerative"`` (``"ward"``, ``"average"``, ``"complete"``,
        ``"single"``).
    random_state : int, Generator or None
        Seed of ``"kmeans"``.

    Returns
    -------
    ndarray of shape (K,)
        Cluster of each unit, numbered by first appearance (unit 0 is in cluster 0). Units
        that won no sample get a cluster like every other unit. A sample's cluster is that
        of its best-matching unit: :func:`cluster_samples` (``clusters[som.predict(X)]``).

    Notes
    -----
    Cost: agglomerative O(K^2) time on the grid graph (scikit-learn), kmeans O(K * n_clusters
    * D) per iteration, umatrix O(K log K): all independent of the number of samples.
    """
    codebook, grid = _fitted(som)
    n_units = grid.n_units
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or not 1 <= n_clusters <= n_units:
        raise ValueError(
            f"n_clusters must be an int in [1, {n_units}] (the number of units), got {n_clusters!r}."
        )
    n_clusters = int(n_clusters)
    if method not in CLUSTER_METHODS:
        raise ValueError(f"method={method!r} is not one of {CLUSTER_METHODS}.")
    if n_clusters == 1:
        return np.zeros(n_units, dtype=np.int64)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=n_clusters, connectivity=grid_connectivity(grid), linkage=linkage
        )
        labels = model.fit_predict(codebook)
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        seed = random_state
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**31 - 1))
        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(codebook)
    else:
        labels = _umatrix_clusters(codebook, grid, n_clusters)
    return _canonical(labels)


def cluster_samples(som: Any, X: Any, unit_clusters: Any) -> np.ndarray:
    """Cluster of each row of ``X``: the cluster of its best-matching unit.

    Exactly ``np.asarray(unit_clusters)[som.predict(X)]``; ``unit_clusters`` is a (K,)
    array such as :func:`cluster_units` returns.
    """
    _, grid = _fitted(som)
    unit_clusters = np.asarray(unit_clusters)
    if unit_clusters.shape != (grid.n_units,):
        raise ValueError(
            f"unit_clusters must have shape ({grid.n_units},) (one per unit), got {unit_clusters.shape}."
        )
    return cast(np.ndarray, unit_clusters[som.predict(X)])


def label_units(som: Any, X: Any, y: Any, *, fill: str | None = None) -> np.ndarray:
    """Majority label of the rows each unit wins; shape ``(K,)`` int64, ``-1`` for empty units.

    Parameters
    ----------
    som : KSOM
        A fitted map.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Non-negative integer labels (encode others with scikit-learn's ``LabelEncoder``).
    fill : {None, "neighbours"}
        ``None``: a unit that won no row gets ``-1``. ``"neighbours"``: empty units are
        filled in rounds: in each round, every still-empty unit with at least one labelled
        grid neighbour takes the most frequent label among its labelled neighbours (ties:
        the smallest label), using only the labels present before the round. Rounds repeat
        until every unit is labelled, so a unit gets the label of its nearest labelled units
        in grid steps.

    Returns
    -------
    ndarray of shape (K,)
        Ties between labels of equal count in a unit go to the smallest label.

    Notes
    -----
    Cost: one BMU search (O(N K D), O(block K) memory) and O(K * n_labels) counts.
    """
    _, grid = _fitted(som)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional (one label per row), got shape {y.shape}.")
    if y.size and y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"y holds {y[bad].item()!r} at row {bad}; every row needs an integer label.")
    # (float64 rounds int64's largest value up to 2**63: compare floats against that)
    too_large = y.size > 0 and (  # (no max of an empty y: its row count is checked below)
        (y.dtype.kind == "u" and y.max() > np.iinfo(np.int64).max)
        or (y.dtype.kind == "f" and y.max() >= 2.0**63)
    )
    if too_large:
        # the result is int64 (-1 for empty units): a larger label would wrap around
        raise ValueError(
            f"y holds the label {y.max().item()!r}, beyond int64's range (the labels are returned as int64); "
            "encode them with LabelEncoder."
        )
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):  # (or empty)
            y = y.astype(np.int64)
        else:
            raise ValueError(
                f"y must hold non-negative integer labels, got dtype {y.dtype} (encode them with LabelEncoder)."
            )
    if y.size and y.min() < 0:
        raise ValueError(f"y must hold non-negative integer labels, got {int(y.min())}.")
    if fill not in (None, "neighbours"):
        raise ValueError(f"fill={fill!r} is not one of (None, 'neighbours').")
    bmus = som.predict(X)
    if bmus.shape[0] != y.shape[0]:
        raise ValueError(f"X has {bmus.shape[0]} rows but y has {y.shape[0]} labels.")
    classes, codes = np.unique(y, return_inverse=True)
    n_units, n_classes = grid.n_units, classes.size
    counts = np.bincount(bmus * n_classes + codes.ravel(), minlength=n_units * n_classes).reshape(
        n_units, n_classes
    )
    # classes as int64 first: with uint8 labels (MNIST's), -1 would become 255
    majority = classes.astype(np.int64)[counts.argmax(axis=1)] if n_classes else -1
    labels = np.where(counts.sum(axis=1) > 0, majority, -1).astype(np.int64)
    if fill == "neighbours":
        labels = fill_from_neighbours(labels, grid)
    return labels


def fill_from_neighbours(unit_labels: Any, grid: Grid) -> np.ndarray:
    """Fill the ``-1`` entries of a (K,) label array from grid neighbours, in rounds.

    The rule of ``label_units(..., fill="neighbours")``: each round, every empty unit with a
    labelled neighbour takes the most frequent neighbour label (ties: smallest); rounds
    repeat until nothing changes. All ``-1`` stays ``-1``.
    """
    given = np.asarray(unit_labels)
    if given.shape != (grid.n_units,):
        raise ValueError(
            f"unit_labels has shape {given.shape}; the grid has {grid.n_units} units, so ({grid.n_units},)."
        )
    if given.dtype.kind not in "iu":
        raise ValueError(f"unit_labels must hold integer labels (-1: none), got dtype {given.dtype}.")
    labels = given.astype(np.int64)
    rows, cols = grid.neighbour_pairs
    while True:
        empty = labels < 0
        if not empty.any():
            return labels
        pick = empty[rows] & (labels[cols] >= 0)
        if not pick.any():
            return labels
        r, lab = rows[pick], labels[cols[pick]]
        # most frequent label per empty unit, smallest on ties: sort by (unit, label), count
        # runs. Labels enter the key by their rank among the present ones (not their value:
        # unit * (max label + 1) overflowed int64 for labels above ~9e18 / K)
        present, rank = np.unique(lab, return_inverse=True)
        width = present.size
        key = np.unique(r.astype(np.int64) * width + rank.ravel(), return_counts=True)
        units, values, count = key[0] // width, present[key[0] % width], key[1]
        order = np.lexsort((values, -count, units))
        units, values = units[order], values[order]
        first = np.r_[True, units[1:] != units[:-1]]
        labels[units[first]] = values[first]
