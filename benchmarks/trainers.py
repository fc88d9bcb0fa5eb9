"""One training function per library, all with the same signature.

``train(X, W0, shape, epochs) -> codebook`` trains from the initial codebook ``W0`` (K, D),
on a map of ``shape`` (rows, cols), for ``epochs`` passes, and returns the final codebook
as (K, D) with units in somvq's order (C order: the last grid axis varies fastest), so that
one shared function scores every codebook. ``prepare`` runs once before timing (imports,
JIT compilation, thread settings) and is not timed.

Neighbourhood settings: every SOM starts at the radius max(shape)/2 and uses its own
default schedule otherwise; the table reports the QE each one reaches.

somvq's trainers also take ``callback`` (passed to ``KSOM.fit``, called after every epoch):
the worker uses it for per-epoch timestamps (the "late epochs" column). Their KSOM
parameters are in :data:`SOMVQ_PARAMS`, so the table can say which BMU search
``bmu_search="auto"`` ran. The trainers in :data:`NAN_DATA` are given the data with
:data:`NAN_FRACTION` of its entries set to NaN (``benchmarks.data.with_holes``, seeded,
untimed); their QE is still computed on the complete data.
"""

from __future__ import annotations

import numpy as np

BATCH_SIZE = 1024  # mini-batch size of somvq minibatch, torchsom and MiniBatchKMeans


def _sigma0(shape):
    return max(shape) / 2.0


# ---------------------------------------------------------------- somvq
#: Fraction of the entries set to NaN for the trainers in :data:`NAN_DATA`.
NAN_FRACTION = 0.1

_BATCH = {"algorithm": "batch", "neighbourhood": "gaussian"}
_NONE = {"algorithm": "batch", "neighbourhood": "none"}

#: KSOM parameters of each somvq trainer (besides grid, n_epochs, init, random_state; the
#: SOMs with a neighbourhood also get radius = max(shape) / 2). ``bmu_search`` left out
#: means KSOM's default, "auto".
SOMVQ_PARAMS = {
    "somvq-batch": _BATCH,
    "somvq-batch-pruned": {**_BATCH, "bmu_search": "pruned"},
    "somvq-batch-full": {**_BATCH, "bmu_search": "full"},
    "somvq-batch-nan": {**_BATCH, "missing": "ignore", "max_missing": 1.0},
    "somvq-none": _NONE,
    "somvq-none-full": {**_NONE, "bmu_search": "full"},
    "somvq-none-pruned": {**_NONE, "bmu_search": "pruned"},
    "somvq-minibatch": {"algorithm": "minibatch", "neighbourhood": "hard", "batch_size": BATCH_SIZE},
    "somvq-online": {"algorithm": "online", "neighbourhood": "gaussian"},
}

#: Trainers that get the data with NaN holes (see ``benchmarks._worker``).
NAN_DATA = {"somvq-batch-nan"}


def somvq_estimator(lib, shape, epochs, W0):
    """The KSOM that trainer ``lib`` fits (unfitted)."""
    from somvq import KSOM

    params = dict(SOMVQ_PARAMS[lib])
    if params["neighbourhood"] not in ("none", "hard"):
        params["radius"] = _sigma0(shape)
    return KSOM(grid=tuple(shape), n_epochs=epochs, init=W0, random_state=0, **params)


def _somvq_trainer(lib):
    def train(X, W0, shape, epochs, callback=None):
        return somvq_estimator(lib, shape, epochs, W0).fit(X, callback=callback).codebook_

    train.__name__ = lib.replace("-", "_")
    return train


# ---------------------------------------------------------------- MiniSom
def _minisom(X, W0, shape, epochs, random_order):
    from minisom import MiniSom

    som = MiniSom(shape[0], shape[1], X.shape[1], sigma=_sigma0(shape), learning_rate=0.5, random_seed=0)
    som._weights = W0.reshape(shape[0], shape[1], -1).astype(np.float64)
    som.train(X, epochs, random_order=random_order, use_epochs=True)
    return som._weights.reshape(-1, X.shape[1])


def minisom_online(X, W0, shape, epochs):
    """MiniSom ``train`` (random order): Kohonen's online rule."""
    return _minisom(X, W0, shape, epochs, True)


def minisom_batch(X, W0, shape, epochs):
    """MiniSom ``train_batch`` (sequential order; still one update per sample)."""
    return _minisom(X, W0, shape, epochs, False)


# ---------------------------------------------------------------- XPySom
def xpysom(X, W0, shape, epochs):
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from xpysom import XPySom

    som = XPySom(shape[0], shape[1], X.shape[1], sigma=_sigma0(shape), random_seed=0, xp=np)
    som._weights = W0.reshape(shape[0], shape[1], -1).astype(np.float32).copy()
    som.train(X, epochs)
    return np.asarray(som._weights).reshape(-1, X.shape[1])


# ---------------------------------------------------------------- somoclu
def somoclu(X, W0, shape, epochs):
    import somoclu as sc

    rows, cols = shape
    som = sc.Somoclu(
        cols, rows, initialcodebook=np.ascontiguousarray(W0, dtype=np.float32).copy(), compactsupport=False
    )
    som.train(np.ascontiguousarray(X, dtype=np.float32), epochs=epochs, radius0=_sigma0(shape), radiusN=1)
    return np.asarray(som.codebook).reshape(-1, X.shape[1])


# ---------------------------------------------------------------- torchsom
def torchsom(X, W0, shape, epochs):
    import torch
    from torchsom import SOM

    som = SOM(
        shape[0],
        shape[1],
        X.shape[1],
        epochs=epochs,
        batch_size=BATCH_SIZE,
        sigma=_sigma0(shape),
        random_seed=0,
    )
    with torch.no_grad():
        som.weights.data = torch.from_numpy(W0.reshape(shape[0], shape[1], -1).copy())
    # SOM.fit's own loop (its DataLoader, schedules, BMUs and updates, in its order) without
    # the quantization and topographic errors it also computes for every batch: two more
    # searches a batch that no other library's row pays, and no switch turns them off
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X)),
        batch_size=som.batch_size,
        shuffle=True,
        pin_memory=False,
        num_workers=0,
    )
    for epoch in range(som.epochs):
        lr, sigma = som.lr_schedule[epoch], som.sigma_schedule[epoch]
        for (batch,) in loader:
            batch = batch.to(som.device)
            som._update_weights(batch, som.identify_bmus(batch), lr, sigma)
    return som.weights.detach().numpy().reshape(-1, X.shape[1])


# ---------------------------------------------------------------- scikit-learn
def kmeans_lloyd(X, W0, shape, epochs):
    from sklearn.cluster import KMeans

    km = KMeans(W0.shape[0], init=W0, n_init=1, max_iter=epochs, tol=0.0, algorithm="lloyd")
    return km.fit(X).cluster_centers_


def kmeans_elkan(X, W0, shape, epochs):
    from sklearn.cluster import KMeans

    km = KMeans(W0.shape[0], init=W0, n_init=1, max_iter=epochs, tol=0.0, algorithm="elkan")
    return km.fit(X).cluster_centers_


def minibatch_kmeans(X, W0, shape, epochs):
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(
        W0.shape[0],
        init=W0,
        n_init=1,
        max_iter=epochs,
        batch_size=BATCH_SIZE,
        max_no_improvement=None,
        tol=0.0,
        random_state=0,
    )
    return km.fit(X).cluster_centers_


def gemm(X, W0, shape, epochs):
    """Not a trainer: the float32 GEMM floor (see _worker)."""
    raise NotImplementedError


#: name -> (function, kind, description). ``kind`` groups libraries for the ratio column.
TRAINERS = {
    "somvq-batch": (_somvq_trainer("somvq-batch"), "som", "somvq KSOM batch, gaussian"),
    "somvq-none": (_somvq_trainer("somvq-none"), "kmeans", "somvq KSOM batch, neighbourhood none"),
    "somvq-minibatch": (
        _somvq_trainer("somvq-minibatch"),
        "minibatch",
        f"somvq KSOM minibatch (paper's KSOM-EMA, hard), batch {BATCH_SIZE}",
    ),
    "somvq-online": (_somvq_trainer("somvq-online"), "online", "somvq KSOM online, gaussian"),
    "minisom-online": (minisom_online, "online", "MiniSom train (random order)"),
    "minisom-batch": (minisom_batch, "som", "MiniSom train_batch (sequential order)"),
    "xpysom": (xpysom, "som", "XPySom (numpy, batch)"),
    "somoclu": (somoclu, "som", "somoclu (dense CPU kernel, batch)"),
    "torchsom": (torchsom, "som", f"torchsom (CPU, batch {BATCH_SIZE})"),
    "kmeans": (kmeans_lloyd, "kmeans", "scikit-learn KMeans lloyd, n_init=1"),
    "kmeans-elkan": (kmeans_elkan, "kmeans", "scikit-learn KMeans elkan, n_init=1"),
    "minibatch-kmeans": (minibatch_kmeans, "minibatch", f"scikit-learn MiniBatchKMeans, batch {BATCH_SIZE}"),
    # added for issue 17 (pruned BMU search, NaN-aware batch); appended so old tables'
    # names keep their meaning: "somvq-batch" / "somvq-none" are KSOM's default search
    # ("auto"), the table says what it ran.
    "somvq-none-full": (
        _somvq_trainer("somvq-none-full"),
        "kmeans",
        'somvq KSOM batch, neighbourhood none, bmu_search="full"',
    ),
    "somvq-none-pruned": (
        _somvq_trainer("somvq-none-pruned"),
        "kmeans",
        'somvq KSOM batch, neighbourhood none, bmu_search="pruned"',
    ),
    "somvq-batch-pruned": (
        _somvq_trainer("somvq-batch-pruned"),
        "som",
        'somvq KSOM batch, gaussian, bmu_search="pruned"',
    ),
    "somvq-batch-full": (
        _somvq_trainer("somvq-batch-full"),
        "som",
        'somvq KSOM batch, gaussian, bmu_search="full"',
    ),
    "somvq-batch-nan": (
        _somvq_trainer("somvq-batch-nan"),
        "som",
        f'somvq KSOM batch, gaussian, missing="ignore", {NAN_FRACTION:.0%} of the entries NaN',
    ),
}

#: The somvq entry each kind is compared with.
REFERENCE = {
    "som": "somvq-batch",
    "kmeans": "somvq-none",
    "minibatch": "somvq-minibatch",
    "online": "somvq-online",
}
