"""Round 3: interleaved in-process comparison of an older somvq tree against this one.

Usage (the old tree is imported as the package ``somvq_base``)::

    git worktree add /tmp/old <commit> && mkdir -p /tmp/basepkg \
        && cp -r /tmp/old/somvq /tmp/basepkg/somvq_base
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \
        SOMVQ_BASE=/tmp/basepkg python benchmarks/round3_interleaved.py 41

Every case runs both versions once per round, order alternated, the GEMM floor
(``benchmarks._worker.gemm_floor``: the fastest of the whole product and 4096-row blocks)
last in each round (OpenBLAS's threads spin after it and slow whatever follows); median
and fastest of the rounds are printed. The KMeans figures start from the same codebook as
the KSOM fits beside them.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.environ.get("SOMVQ_BASE", "/tmp/basepkg"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import somvq_base.algorithms as A0
import somvq_base.estimator as E0
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

import somvq.algorithms as A1
import somvq.estimator as E1
from benchmarks._worker import gemm_floor
from somvq.grids import Grid
from somvq.neighbourhoods import Neighbourhood
from somvq.schedules import Schedule

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
rng = np.random.default_rng(0)
X = rng.normal(size=(100000, 32)).astype(np.float32)
W = X[rng.choice(len(X), 512, replace=False)].copy()
Xd = load_digits().data.astype(np.float32)
X4 = rng.normal(size=(10000, 16)).astype(np.float32)
Wd = Xd[rng.choice(len(Xd), 512, replace=False)].copy()  # the same start for KSOM and KMeans
W4 = X4[rng.choice(len(X4), 400, replace=False)].copy()
order = rng.permutation(len(X))
grid = Grid((16, 32))
nb = Neighbourhood("hard", Schedule("inverse_time", 4.0, 0.5, 0.1, 100.0), 0.1)


def mb(A):
    w = W.copy()
    N = np.ones(512)
    m = W.astype(np.float64)
    A.minibatch_pass_inplace(X, order, w, N, m, nb, grid, 0, batch_size=1024, decay=0.99, eps=1e-5)
    return w


def gemm():
    return gemm_floor(X, W, repeats=2)  # the second reuses the buffers the first touched


cases = {
    "assign_1e5x32": (lambda: A0.assign(X, W), lambda: A1.assign(X, W)),
    "unit_stats_1e5x32": (lambda: A0.unit_statistics(X, W), lambda: A1.unit_statistics(X, W)),
    "minibatch_epoch_1e5": (lambda: mb(A0), lambda: mb(A1)),
    "digits_none_16x32_b": (
        lambda: E0.KSOM((16, 32), neighbourhood="none", n_epochs=10, init=Wd).fit(Xd),
        lambda: E1.KSOM((16, 32), neighbourhood="none", n_epochs=10, init=Wd).fit(Xd),
    ),
    "1e4x16_none_20x20": (
        lambda: E0.KSOM((20, 20), neighbourhood="none", n_epochs=10, init=W4).fit(X4),
        lambda: E1.KSOM((20, 20), neighbourhood="none", n_epochs=10, init=W4).fit(X4),
    ),
    "gemm_floor_1e5": (gemm, gemm),  # last: OpenBLAS's 2 threads spin after it
}
km = {
    "digits_none_16x32_b": lambda: KMeans(512, algorithm="lloyd", n_init=1, max_iter=10, tol=0, init=Wd).fit(
        Xd
    ),
    "1e4x16_none_20x20": lambda: KMeans(400, algorithm="lloyd", n_init=1, max_iter=10, tol=0, init=W4).fit(
        X4
    ),
}
# equality check
a0 = A0.unit_statistics(X, W)
a1 = A1.unit_statistics(X, W)
print(
    "unit_statistics counts equal",
    np.array_equal(a0.counts, a1.counts),
    "sums equal",
    np.array_equal(a0.sums, a1.sums),
)
print("minibatch codebook equal", np.array_equal(mb(A0), mb(A1)))
for f0, f1 in cases.values():
    f0()
    f1()
for f in km.values():
    f()
R = int(sys.argv[1]) if len(sys.argv) > 1 else 9
res = {k: ([], []) for k in cases}
rk = {k: [] for k in km}
for r in range(R):
    for name, (f0, f1) in cases.items():
        time.sleep(0.02)
        pair = [(0, f0), (1, f1)] if r % 2 == 0 else [(1, f1), (0, f0)]
        for i, f in pair:
            t = time.perf_counter()
            floor = f()
            res[name][i].append(floor if name == "gemm_floor_1e5" else time.perf_counter() - t)
        if name in km:
            t = time.perf_counter()
            km[name]()
            rk[name].append(time.perf_counter() - t)
            time.sleep(0.02)
g = min(res["gemm_floor_1e5"][0] + res["gemm_floor_1e5"][1])

print(f"load {os.getloadavg()[0]:.2f}; GEMM floor (fastest) 1e5x32 K=512: {g * 1e3:.1f} ms")
for name, (t0, t1) in res.items():
    m0, m1 = np.median(t0) * 1e3, np.median(t1) * 1e3
    extra = f"  KMeans {np.median(rk[name]) * 1e3:.1f} ms" if name in rk else ""
    xg = f"  ({m0 / g / 1e3:.2f}x -> {m1 / g / 1e3:.2f}x GEMM)" if "1e5" in name else ""
    print(
        f"{name:22s} before {m0:8.2f} ms  after {m1:8.2f} ms  ratio {m1 / m0:.3f}  min {min(t0) * 1e3:.2f} -> {min(t1) * 1e3:.2f}{xg}{extra}"
    )
