"""A slow, literal NumPy transcription of docs/algorithms.md §2, §3 and §7 and of GD-SOM (docs/torch.md), float64.

Nothing here imports somvq: the grid (the reference code's numbering and automatic shape),
the kernels and the KSOM-EMA step are written again from the text, with a dense one-hot E
and a dense H, so that the torch plugin is compared with an independent implementation.
"""

from __future__ import annotations

import math

import numpy as np


def decompose_factors(n, dim):
    """The reference's automatic shape, first axis fastest: 512, 2 -> [32, 16]."""
    if dim == 1:
        return [n]
    h = math.ceil(n ** (1 / dim))
    for i in range(h, 0, -1):
        if n % i == 0:
            return decompose_factors(n // i, dim - 1) + [i]
    raise ValueError("factorisation failed")


def reference_grid_distances(n_units, grid_dim):
    """Euclidean grid distances in the reference's numbering.

    coord_j(i) = (i // prod(shape[:j])) % shape[j], with the reference's automatic shape.
    """
    shape = decompose_factors(n_units, grid_dim)
    coords = np.array(
        [[(i // int(np.prod(shape[:j]))) % shape[j] for j in range(len(shape))] for i in range(n_units)],
        dtype=np.float64,
    )
    return np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))


def neighbourhood_matrix(distances, kind, t, shrink=0.1, radius=None):
    """H_t from docs/algorithms.md §3 (t = updates already applied)."""
    K = distances.shape[0]
    if kind == "none":
        return np.eye(K)
    if kind == "hard":
        H = np.where((distances > 0) & (distances < 1.5), 1.0 / (1.0 + shrink * t), 0.0)
    elif kind == "exponential":  # the paper's "Gaussian", sigma = 10
        sigma = 10.0 if radius is None else radius
        H = np.exp(-distances * (1.0 + shrink * t) / sigma)
    elif kind == "gaussian":  # classic, r(t) = r0 / (1 + shrink t)
        r = radius / (1.0 + shrink * t)
        H = np.exp(-(distances**2) / (2.0 * r**2))
    else:
        raise ValueError(kind)
    np.fill_diagonal(H, 1.0)
    return H


class KsomEma:
    """Section 6, step by step: c = E^T 1, S = E^T X, n = H c, s = H S, then (E1)-(E4)."""

    def __init__(
        self,
        codebook,
        distances,
        kind,
        *,
        decay=0.99,
        eps=1e-5,
        init_count=1.0,
        update="all",
        shrink=0.1,
        radius=None,
        cosine=False,
    ):
        # cosine (issue 18): rows and codes on the unit sphere; the statistics are those of
        # the unit rows, and every code is divided by its length after (E4).
        self.cosine = cosine
        self.w = np.array(codebook, dtype=np.float64)
        self.m = self.w.copy()  # m0 = w0
        self.N = np.full(self.w.shape[0], float(init_count))
        self.t = 0
        self.distances = distances
        self.kind, self.decay, self.eps, self.update = kind, decay, eps, update
        self.shrink, self.radius = shrink, radius

    def step(self, X):
        """One update on the batch X; returns (BMU indices, z_q before the update)."""
        X = np.asarray(X, dtype=np.float64)
        K = self.w.shape[0]
        if self.cosine:
            X = X / np.sqrt((X * X).sum(1))[:, None]
            cos = np.array([[x @ w / np.sqrt(w @ w) for w in self.w] for x in X])
            bmu = cos.argmax(1)  # the most similar code
        else:
            sq = ((X[:, None, :] - self.w[None, :, :]) ** 2).sum(-1)
            bmu = sq.argmin(1)
        z_q = self.w[bmu].copy()
        E = np.zeros((X.shape[0], K))
        E[np.arange(X.shape[0]), bmu] = 1.0
        H = neighbourhood_matrix(self.distances, self.kind, self.t, self.shrink, self.radius)
        EH = E @ H  # dense B x K times K x K, as the text says
        n = EH.sum(0)
        s = EH.T @ X
        g = self.decay
        if self.update == "all":
            N = g * self.N + (1 - g) * n  # (E1)
            N = (N + self.eps) / (N.sum() + K * self.eps) * N.sum()  # (E2)
            m = g * self.m + (1 - g) * s  # (E3)
            w = m / N[:, None]  # (E4)
        else:  # only written units (n_k > 0), no smoothing
            N, m, w = self.N.copy(), self.m.copy(), self.w.copy()
            for k in range(K):
                if n[k] > 0:
                    N[k] = g * self.N[k] + (1 - g) * n[k]
                    m[k] = g * self.m[k] + (1 - g) * s[k]
                    w[k] = m[k] / N[k]
        if self.cosine:
            for k in range(K):
                w[k] = w[k] / math.sqrt(float(w[k] @ w[k]))
        self.N, self.m, self.w = N, m, w
        self.t += 1
        return bmu, z_q


def kohonen_loss(codebook, X, distances, kind, t, shrink=0.1, radius=None):
    """Section 7's neighbourhood term, literally: mean_i sum_k h(k*_i, k) ||w_k - w_k*_i||^2."""
    W = np.asarray(codebook, dtype=np.float64)
    bmu = ((X[:, None, :] - W[None, :, :]) ** 2).sum(-1).argmin(1)
    H = neighbourhood_matrix(distances, kind, t, shrink, radius)
    total = 0.0
    for i in range(X.shape[0]):
        for k in range(W.shape[0]):
            total += H[bmu[i], k] * ((W[k] - W[bmu[i]]) ** 2).sum()
    return total / X.shape[0]
