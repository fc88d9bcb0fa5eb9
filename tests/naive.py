"""Slow, obviously correct NumPy versions of the algorithms, written from docs/algorithms.md.

Nothing here imports somvq: every formula is transcribed again, literally, with dense
one-hot matrices and direct distances, and grid distances come from this module's own
:func:`grid_distances`, so the fast paths are compared against an independent
implementation rather than against themselves.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


# --------------------------------------------------------------------------- grids
def reference_factors(n, dim):
    """The reference code's decompose_factors, transcribed."""
    if dim == 1:
        return [n]
    h = math.ceil(n ** (1 / dim))
    for i in range(h, 0, -1):
        if n % i == 0:
            return reference_factors(n // i, dim - 1) + [i]
    raise ValueError


def reference_order_distances(shape_first_fastest):
    """Grid distances with the reference's numbering: coord_j(i) = (i // prod(shape[:j])) % shape[j]."""
    n = int(np.prod(shape_first_fastest))
    coords = []
    for i in range(n):
        c, rem = [], i
        for s in shape_first_fastest:
            c.append(rem % s)
            rem //= s
        coords.append(c)
    coords = np.array(coords, dtype=float)
    return np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))


def grid_coordinates(shape, topology="rectangular"):
    """Unit positions, units numbered in C order (last axis fastest).

    Rectangular: the integer indices. Hexagonal ``(rows, cols)``: unit (r, c) sits at
    height r * sqrt(3)/2 and abscissa c + 1/2 on odd rows (offset rows), so the six
    adjacent cells are 1 away.
    """
    positions = []
    for index in np.ndindex(*shape):
        if topology == "hexagonal":
            r, c = index
            positions.append((r * math.sqrt(3.0) / 2.0, c + (0.5 if r % 2 else 0.0)))
        elif topology == "rectangular":
            positions.append(tuple(float(i) for i in index))
        else:
            raise ValueError(topology)
    return np.array(positions, dtype=float)


def grid_distances(shape, topology="rectangular", periodic=False):
    """Euclidean distance between unit positions, pair by pair, from exact integer squared
    distances (one sqrt each).

    In quarter units 4 d^2 is an integer: 4 sum_i step_i^2 on a rectangular grid, and
    3 drow^2 + (2 dcol + row_b % 2 - row_a % 2)^2 on a hexagonal one (rows sqrt(3)/2 apart,
    odd rows shifted right by 1/2), the smallest over the periodic images (shifts by -1, 0,
    +1 axis lengths). Adjacent hexagonal cells are exactly 1 apart (positions with a rounded
    sqrt(3)/2 would leave an ulp of noise and break ties at random).
    """
    shape = tuple(shape)
    wraps = (bool(periodic),) * len(shape) if np.ndim(periodic) == 0 else tuple(bool(p) for p in periodic)
    images = list(itertools.product(*[(-1, 0, 1) if wrap else (0,) for wrap in wraps]))
    indices = list(np.ndindex(*shape))
    D = np.zeros((len(indices), len(indices)))
    for a, ia in enumerate(indices):
        for b, ib in enumerate(indices):
            quarters = []
            for image in images:
                step = [int(ib[i]) + image[i] * shape[i] - int(ia[i]) for i in range(len(shape))]
                if topology == "hexagonal":  # a periodic row axis has an even length: parity kept
                    quarters.append(3 * step[0] ** 2 + (2 * step[1] + ib[0] % 2 - ia[0] % 2) ** 2)
                else:
                    quarters.append(4 * sum(s * s for s in step))
            D[a, b] = math.sqrt(min(quarters) / 4)
    return D


# ------------------------------------------------------------------ neighbourhoods
def paper_hard(distances, t, shrink):
    """h = 1 on the diagonal, 1/(1 + shrink t) for 0 < d < 1.5, else 0."""
    H = (distances < 1.5).astype(float) / (1.0 + t * shrink)
    np.fill_diagonal(H, 1.0)
    return H


def paper_exponential(distances, t, shrink, sigma):
    """h = exp(-d (1 + shrink t) / sigma), diagonal forced to 1."""
    H = np.exp(distances * ((1 + t * shrink) / (-sigma)))
    np.fill_diagonal(H, 1.0)
    return H


def classic(distances, kind, r):
    d = distances
    if kind == "gaussian":
        return np.exp(-(d**2) / (2 * r**2))
    if kind == "bubble":
        return (d <= r).astype(float)
    if kind == "triangle":
        return np.maximum(0.0, 1 - d / r)
    if kind == "cut_gaussian":
        return np.exp(-(d**2) / (2 * r**2)) * (d <= r)
    if kind == "mexican_hat":
        return (1 - d**2 / r**2) * np.exp(-(d**2) / (2 * r**2))
    raise ValueError(kind)


# ------------------------------------------------------------------ initialisation
def pca_codebook(X, coordinates):
    """The linear SOM initialisation from an SVD of the centred float64 rows: unit ``k`` at
    ``mean + sum_r c_{k, a_r} s_r v_r``, ``v_r`` the r-th right singular vector (its
    largest-magnitude entry positive), ``s_r`` its singular value over ``sqrt(n - 1)``,
    ``a_r`` the r-th longest grid axis and ``c`` the coordinates mapped to [-1, 1]."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    _, singular, vt = np.linalg.svd(X - mean, full_matrices=False)
    coordinates = np.asarray(coordinates, dtype=np.float64)
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    span = high - low
    codebook = np.tile(mean, (coordinates.shape[0], 1))
    axes = sorted(range(coordinates.shape[1]), key=lambda a: -span[a])  # stable: ties keep order
    for r, axis in enumerate(axes[: vt.shape[0]]):
        v = vt[r] if vt[r][np.argmax(np.abs(vt[r]))] >= 0 else -vt[r]
        c = (
            2.0 * (coordinates[:, axis] - low[axis]) / span[axis] - 1.0
            if span[axis] > 0
            else 0.0 * coordinates[:, axis]
        )
        codebook += np.outer(c * singular[r] / math.sqrt(X.shape[0] - 1), v)
    return codebook


# ---------------------------------------------------------------------- algorithms
def bmu(X, W):
    """argmin_k ||x - w_k||^2 from explicit differences (lowest index on ties)."""
    d = ((X[:, None, :].astype(float) - W[None, :, :].astype(float)) ** 2).sum(-1)
    return d.argmin(1)


def one_hot(indices, K):
    E = np.zeros((len(indices), K))
    E[np.arange(len(indices)), indices] = 1.0
    return E


def batch_ksom_step(X, W, H):
    """c = E^T 1, S = E^T X, n = H c, s = H S, w_k = s_k / n_k (n_k = 0 keeps w_k)."""
    X = X.astype(float)
    E = one_hot(bmu(X, W), W.shape[0])
    c = E.T @ np.ones(len(X))
    S = E.T @ X
    n, s = H @ c, H @ S
    W_new = W.astype(float).copy()
    for k in range(W.shape[0]):
        if n[k] > 0:
            W_new[k] = s[k] / n[k]
    return W_new


def minibatch_ksom_step(Xb, W, N, m, H, decay, eps, update="all"):
    """(E1)-(E4) of docs/algorithms.md §7 in the (E H)^T form, float64."""
    Xb = Xb.astype(float)
    E = one_hot(bmu(Xb, W), W.shape[0])
    EH = E @ H
    n = EH.T @ np.ones(len(Xb))
    s = EH.T @ Xb
    K = W.shape[0]
    if update == "all":
        N = decay * N + (1 - decay) * n
        total = N.sum()
        N = (N + eps) / (total + K * eps) * total
        m = decay * m + (1 - decay) * s
        return N, m, m / N[:, None]
    N, m, W = N.copy(), m.copy(), W.astype(float).copy()
    for k in range(K):
        if n[k] > 0:
            N[k] = decay * N[k] + (1 - decay) * n[k]
            m[k] = decay * m[k] + (1 - decay) * s[k]
            W[k] = m[k] / N[k]
    return N, m, W


def ema_vq_step(Xb, W, N, m, decay, eps, update="all"):
    """A textbook EMA-VQ codebook update (VQ-VAE), written without any neighbourhood."""
    Xb = Xb.astype(float)
    K = W.shape[0]
    assign = bmu(Xb, W)
    counts = np.bincount(assign, minlength=K).astype(float)
    sums = np.zeros_like(m)
    for i, k in enumerate(assign):
        sums[k] += Xb[i]
    if update == "all":
        N = decay * N + (1 - decay) * counts
        total = N.sum()
        N = (N + eps) / (total + K * eps) * total
        m = decay * m + (1 - decay) * sums
        return N, m, m / N[:, None]
    used = counts > 0
    N, m, W = N.copy(), m.copy(), W.astype(float).copy()
    N[used] = decay * N[used] + (1 - decay) * counts[used]
    m[used] = decay * m[used] + (1 - decay) * sums[used]
    W[used] = m[used] / N[used][:, None]
    return N, m, W


def online_ksom_pass(X, W, order, h_row, rate):
    """w_k += rate(t, k*) h_t(k*, k) (x - w_k) for every sample in order; t from 0.

    ``h_row(t, winner)`` returns the neighbourhood row, ``rate(t, winner)`` the rate.
    """
    W = W.astype(float).copy()
    for t, i in enumerate(order):
        x = X[i].astype(float)
        k = int(((x - W) ** 2).sum(1).argmin())
        eta = rate(t, k)
        W += eta * h_row(t, k)[:, None] * (x - W)
    return W


def macqueen(X, W, order, initial_count):
    """MacQueen's online k-means: the winner moves to the running mean of its inputs."""
    W = W.astype(float).copy()
    counts = np.full(W.shape[0], float(initial_count))
    for i in order:
        x = X[i].astype(float)
        k = int(((x - W) ** 2).sum(1).argmin())
        counts[k] += 1
        W[k] += (x - W[k]) / counts[k]
    return W


# ------------------------------------------------------------------- exact distances
def brute_force_squared_distances(X, W):
    """||x_i - w_k||^2 in float64, by direct differences (no expanded form): the exact
    reference for float32 inputs (float64 holds every difference of two float32 values
    and their squares to ~1e-16)."""
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    out = np.empty((X.shape[0], W.shape[0]))
    for k in range(W.shape[0]):
        out[:, k] = ((X - W[k]) ** 2).sum(1)
    return out


def clear_rows(d, places=1, gap=1e-6):
    """Rows whose ``places + 1`` best distances are separated by more than ``gap`` relative
    (d_next - d) / d_next: the rows where the ranking is not a near-tie."""
    part = np.sort(d, axis=1)[:, : places + 1]
    ok = np.ones(d.shape[0], dtype=bool)
    for p in range(min(places, d.shape[1] - 1)):
        lo, hi = part[:, p], part[:, p + 1]
        ok &= (hi - lo) > gap * hi
    return ok


# ------------------------------------------------------------------ quality measures
def topographic_error(X, W, distances):
    """Fraction of rows whose best and second-best units (by explicit distances, lower
    index first on ties) are not grid neighbours (0 < d < 1.5)."""
    X, W = np.asarray(X, dtype=float), np.asarray(W, dtype=float)
    errors = 0
    for x in X:
        d = ((x[None, :] - W) ** 2).sum(1)
        best, second = np.argsort(d, kind="stable")[:2]
        errors += not (0 < distances[best, second] < 1.5)
    return errors / len(X)


def perplexity(labels, K):
    """exp(-sum_k p_k log(p_k + 1e-10)), p_k the fraction of rows won by unit k."""
    p = np.array([np.sum(np.asarray(labels) == k) for k in range(K)], dtype=float) / len(labels)
    return float(np.exp(-(p * np.log(p + 1e-10)).sum()))


# ------------------------------------------------------------------ missing values (NaN)
def masked_distances(X, W):
    """D / n_obs * sum over observed j of (x_j - w_kj)^2, by explicit loops over rows."""
    X, W = np.asarray(X, dtype=float), np.asarray(W, dtype=float)
    out = np.empty((X.shape[0], W.shape[0]))
    for i, x in enumerate(X):
        obs = ~np.isnan(x)
        out[i] = X.shape[1] / obs.sum() * ((x[obs][None, :] - W[:, obs]) ** 2).sum(1)
    return out


def masked_bmu(X, W):
    return masked_distances(X, W).argmin(1)


def masked_statistics(X, W, H):
    """n_kj = sum_i (EH)_ik m_ij and s_kj = sum_i (EH)_ik m_ij x_ij, dense one-hot form."""
    X = np.asarray(X, dtype=float)
    E = one_hot(masked_bmu(X, W), W.shape[0]) @ H
    M = (~np.isnan(X)).astype(float)
    return E.T @ M, E.T @ np.where(np.isnan(X), 0.0, X)


def masked_batch_step(X, W, H):
    n, s = masked_statistics(X, W, H)
    W_new = np.asarray(W, dtype=float).copy()
    for k in range(W.shape[0]):
        for j in range(W.shape[1]):
            if n[k, j] > 0:
                W_new[k, j] = s[k, j] / n[k, j]
    return W_new


def masked_minibatch_step(Xb, W, N, m, H, decay, eps, update="all"):
    """(E1)-(E4) per feature: N, n, m, s are (K, D); smoothing per feature column."""
    n, s = masked_statistics(Xb, W, H)
    K, D = W.shape
    if update == "all":
        N_new = decay * N + (1 - decay) * n
        m_new = decay * m + (1 - decay) * s
        W_new = np.asarray(W, dtype=float).copy()
        for j in range(D):
            total = N_new[:, j].sum()
            if total == 0:  # nothing weighs on feature j: it keeps N, m and w
                N_new[:, j], m_new[:, j] = N[:, j], m[:, j]
                continue
            N_new[:, j] = (N_new[:, j] + eps) / (total + K * eps) * total
            W_new[:, j] = m_new[:, j] / N_new[:, j]
        return N_new, m_new, W_new
    N, m, W = N.copy(), m.copy(), np.asarray(W, dtype=float).copy()
    for k in range(K):
        for j in range(D):
            if n[k, j] > 0:
                N[k, j] = decay * N[k, j] + (1 - decay) * n[k, j]
                m[k, j] = decay * m[k, j] + (1 - decay) * s[k, j]
                W[k, j] = m[k, j] / N[k, j]
    return N, m, W


def masked_online_pass(X, W, order, h_row, rate):
    """w_kj += rate h(k*, k) (x_j - w_kj) for observed j only; winner by masked distance."""
    W = np.asarray(W, dtype=float).copy()
    for t, i in enumerate(order):
        x = np.asarray(X[i], dtype=float)
        obs = ~np.isnan(x)
        k = int((((x[obs] - W[:, obs]) ** 2).sum(1)).argmin())
        eta = rate(t, k)
        W[:, obs] += eta * h_row(t, k)[:, None] * (x[obs] - W[:, obs])
    return W


# --------------------------------------------------------------------------- layers (issue 14)
def layered_distance(x, c, layers, weights, kinds):
    """sum_l w_l d_l(x_l, c_l) for ONE row x and ONE unit c, loops over columns.

    sqeuclidean: sum of squared differences; tanimoto (kohonen): the number of positions
    where the bit x_j differs from (c_j > 0.5), divided by the layer's width.
    """
    total = 0.0
    for cols, w, kind in zip(layers, weights, kinds):
        part = 0.0
        for j in cols:
            if kind == "sqeuclidean":
                part += (float(x[j]) - float(c[j])) ** 2
            else:
                bit = 1.0 if c[j] > 0.5 else 0.0
                part += 1.0 if float(x[j]) != bit else 0.0
        if kind == "tanimoto":
            part /= len(cols)
        total += w * part
    return total


def layered_bmus(X, codebook, layers, weights, kinds):
    """BMU of every row under the layered distance (lowest index on ties) and the distance."""
    bmus, dists = [], []
    for x in X:
        d = [layered_distance(x, c, layers, weights, kinds) for c in codebook]
        k = int(np.argmin(d))
        bmus.append(k)
        dists.append(d[k])
    return np.array(bmus), np.array(dists)


# ------------------------------------------------------------ layers with missing values (issue 14)
def layered_masked_distance(x, c, layers, weights, kinds):
    """kohonen's supersom distance with NA for ONE row and ONE unit, loops over columns.

    Per layer of positive weight, over the row's observed entries only: sqeuclidean sums
    the squared differences and scales by (layer width / observed count); tanimoto counts
    the bits that differ from (c_j > 0.5) and divides by the observed count. Then the
    weighted sum over the layers.
    """
    total = 0.0
    for cols, w, kind in zip(layers, weights, kinds):
        if w == 0:
            continue
        part, n_obs = 0.0, 0
        for j in cols:
            if np.isnan(x[j]):
                continue
            n_obs += 1
            if kind == "sqeuclidean":
                part += (float(x[j]) - float(c[j])) ** 2
            else:
                bit = 1.0 if c[j] > 0.5 else 0.0
                part += 1.0 if float(x[j]) != bit else 0.0
        total += w * (part / n_obs if kind == "tanimoto" else part * len(cols) / n_obs)
    return total


def layered_masked_bmus(X, W, layers, weights, kinds):
    """BMU (lowest index on ties) and distance of every row under the masked layered distance."""
    d = np.array([[layered_masked_distance(x, c, layers, weights, kinds) for c in W] for x in X])
    k = d.argmin(1)
    return k, d[np.arange(len(X)), k]


def layered_masked_statistics(X, W, H, layers, weights, kinds):
    """n_kj and s_kj over observed entries (dense one-hot form), winners by the layered distance."""
    X = np.asarray(X, dtype=float)
    E = one_hot(layered_masked_bmus(X, W, layers, weights, kinds)[0], W.shape[0]) @ H
    M = (~np.isnan(X)).astype(float)
    return E.T @ M, E.T @ np.where(np.isnan(X), 0.0, X)


def layered_masked_batch_step(X, W, H, layers, weights, kinds):
    n, s = layered_masked_statistics(X, W, H, layers, weights, kinds)
    W_new = np.asarray(W, dtype=float).copy()
    for k in range(W.shape[0]):
        for j in range(W.shape[1]):
            if n[k, j] > 0:
                W_new[k, j] = s[k, j] / n[k, j]
    return W_new


def layered_ema_step(Xb, W, N, m, H, decay, eps, layers, weights, kinds):
    """(E1)-(E4) with (K,) counts (no NaN), winners by the layered distance (tanimoto thresholded)."""
    E = one_hot(layered_masked_bmus(Xb, W, layers, weights, kinds)[0], W.shape[0]) @ H
    n, s = E.sum(0), E.T @ np.asarray(Xb, dtype=float)
    K = W.shape[0]
    N = decay * N + (1 - decay) * n
    total = N.sum()
    N = (N + eps) / (total + K * eps) * total
    m = decay * m + (1 - decay) * s
    return N, m, m / N[:, None]


def layered_masked_online_pass(X, W, order, h_row, rate, layers, weights, kinds):
    """w_kj += rate h(k*, k) (x_j - w_kj) for observed j; winner by the layered masked distance."""
    W = np.asarray(W, dtype=float).copy()
    for t, i in enumerate(order):
        x = np.asarray(X[i], dtype=float)
        obs = ~np.isnan(x)
        k = int(np.argmin([layered_masked_distance(x, c, layers, weights, kinds) for c in W]))
        W[:, obs] += rate(t, k) * h_row(t, k)[:, None] * (x[obs] - W[:, obs])
    return W
