"""KSOMClassifier variants on Fashion-MNIST (standard split, seed 0): accuracy and fit time. Not a test.

    .venv/bin/python -m benchmarks.supervised_variants "grid=20x20,ft=2" "y_weight=2" "grid=auto"

Each argument is one variant, comma-separated settings on top of grid=20x20, n_epochs=20:
``grid=RxC`` or ``grid=auto``, ``n_epochs=N``, ``y_weight=W``, ``radius=R``, ``nb=KIND``
(neighbourhood), ``ft=N`` (after the fit, N extra batch epochs with no neighbourhood,
i.e. radius 0: k-means steps on [X, Y], and the accuracy again). Pixels standardized on
the train part, as benchmarks/bench_supervised.py.
"""

import sys
import time

import numpy as np
from sklearn.preprocessing import StandardScaler

from somvq import KSOMClassifier
from somvq.datasets import load_idx_dataset

Xtr, ytr = load_idx_dataset("fashion-mnist", "train")
Xte, yte = load_idx_dataset("fashion-mnist", "test")
Xtr, Xte = Xtr.reshape(len(Xtr), -1).astype(float), Xte.reshape(len(Xte), -1).astype(float)
sc = StandardScaler().fit(Xtr)
Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)


def finetune(clf, epochs=1):
    """Extra batch epochs with no neighbourhood (radius 0: k-means steps on [X, Y])."""
    som = clf.som_
    classes = clf.classes_
    Z = np.hstack([Xtr, np.eye(classes.size)[np.searchsorted(classes, ytr)]])
    som.set_params(neighbourhood="none")
    for _ in range(epochs):
        som.partial_fit(Z)
    return clf


for v in sys.argv[1:]:
    kw = dict(grid=(20, 20), n_epochs=20, random_state=0)
    ft = 0
    for part in v.split(","):
        k, val = part.split("=")
        if k == "grid":
            kw["grid"] = val if val == "auto" else tuple(int(a) for a in val.split("x"))
        elif k == "ft":
            ft = int(val)
        elif k in ("n_epochs",):
            kw[k] = int(val)
        elif k in ("y_weight",):
            kw[k] = float(val)
        elif k == "radius":
            kw[k] = float(val)
        elif k == "nb":
            kw["neighbourhood"] = val
    t = time.perf_counter()
    clf = KSOMClassifier(**kw).fit(Xtr, ytr)
    t_fit = time.perf_counter() - t
    acc0 = float(np.mean(clf.predict(Xte) == yte))
    line = f"{v}: grid {clf.som_.grid_.shape} acc {acc0:.4f} fit {t_fit:.0f}s"
    if ft:
        t = time.perf_counter()
        finetune(clf, ft)
        t_ft = time.perf_counter() - t  # the fine-tuning alone, not the predict below
        acc1 = float(np.mean(clf.predict(Xte) == yte))
        line += f" | +{ft} zero-radius epoch(s): acc {acc1:.4f} ({t_ft:.0f}s)"
    print(line, flush=True)
