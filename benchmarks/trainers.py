"""One training function per library, all with the same signature.

``train(X, W0, shape, epochs) -> codebook`` trains from the initial codebook ``W0`` (K, D),
on a map of ``shape`` (rows, cols), for ``epochs`` passes, and returns the final codebook
as (K, D) with units in somvq's order (C order: the last grid axis varies fastest), so that
one shared function scores every codebook. ``prepare`` runs once before timing (imports,
JIT compilation, thread settings) and is not timed.

Neighbourhood settings: every SOM starts at the radius max(shape)/2 and uses its own
default schedule otherwise; the table reports the QE each one reaches.
"""

from __future__ import annotations

import numpy as np

BATCH_SIZE = 1024  # mini-batch size of somvq minibatch, torchsom and MiniBatchKMeans


def _sigma0(shape):
    return max(shape) / 2.0


# ---------------------------------------------------------------- somvq
def _somvq(X, W0, shape, epochs, **params):
    from somvq import KSOM

    som = KSOM(grid=tuple(shape), n_epochs=epochs, init=W0, radius=_sigma0(shape), random_state=0, **params)
    som.fit(X)
    return som.codebook_


def somvq_batch(X, W0, shape, epochs):
    return _somvq(X, W0, shape, epochs, algorithm="batch", neighbourhood="gaussian")


def somvq_none(X, W0, shape, epochs):
    from somvq import KSOM

    som = KSOM(
        grid=tuple(shape), n_epochs=epochs, init=W0, random_state=0, algorithm="batch", neighbourhood="none"
    )
    return som.fit(X).codebook_


def somvq_minibatch(X, W0, shape, epochs):
    from somvq import KSOM

    som = KSOM(
        grid=tuple(shape),
        n_epochs=epochs,
        init=W0,
        random_state=0,
        algorithm="minibatch",
        neighbourhood="hard",
        batch_size=BATCH_SIZE,
    )
    return som.fit(X).codebook_


def somvq_online(X, W0, shape, epochs):
    return _somvq(X, W0, shape, epochs, algorithm="online", neighbourhood="gaussian")


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
    som.fit(torch.from_numpy(X), verbose=False)
    return som.weights.detach().numpy().reshape(-1, X.shape[1])


# ---------------------------------------------------------------- scikit-learn
def kmeans_lloyd(X, W0, shape, epochs):
    from sklearn.cluster import KMeans

    km = KMeans(W0.shape[0], init=W0, n_init=1, max_iter=epochs, tol=0.0, algorithm="lloyd")
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
    "somvq-batch": (somvq_batch, "som", "somvq KSOM batch, gaussian"),
    "somvq-none": (somvq_none, "kmeans", "somvq KSOM batch, neighbourhood none"),
    "somvq-minibatch": (
        somvq_minibatch,
        "minibatch",
        f"somvq KSOM minibatch (paper's KSOM-EMA, hard), batch {BATCH_SIZE}",
    ),
    "somvq-online": (somvq_online, "online", "somvq KSOM online, gaussian"),
    "minisom-online": (minisom_online, "online", "MiniSom train (random order)"),
    "minisom-batch": (minisom_batch, "som", "MiniSom train_batch (sequential order)"),
    "xpysom": (xpysom, "som", "XPySom (numpy, batch)"),
    "somoclu": (somoclu, "som", "somoclu (dense CPU kernel, batch)"),
    "torchsom": (torchsom, "som", f"torchsom (CPU, batch {BATCH_SIZE})"),
    "kmeans": (kmeans_lloyd, "kmeans", "scikit-learn KMeans lloyd, n_init=1"),
    "minibatch-kmeans": (minibatch_kmeans, "minibatch", f"scikit-learn MiniBatchKMeans, batch {BATCH_SIZE}"),
}

#: The somvq entry each kind is compared with.
REFERENCE = {
    "som": "somvq-batch",
    "kmeans": "somvq-none",
    "minibatch": "somvq-minibatch",
    "online": "somvq-online",
}
