"""First-use latency: ``import somvq`` and the first fit in a fresh process (warm cache).

Each repeat starts a new interpreter that imports numpy, loads digits from a .npy file,
times ``import somvq`` and then ``KSOM(...).fit(X)`` (batch, 16x32, 10 epochs: imports
the estimator, scikit-learn and numba, loads the cached kernels, runs the fit) and a second
fit in the same process (the steady-state cost, for comparison). Prints medians.

    python -m benchmarks.first_fit --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np
X = np.load(sys.argv[1])
t0 = time.perf_counter()
import somvq
t1 = time.perf_counter()
from somvq import KSOM
KSOM(grid=(16, 32), random_state=0).fit(X)
t2 = time.perf_counter()
KSOM(grid=(16, 32), random_state=0).fit(X)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_fit": t2 - t1, "second_fit": t3 - t2}))
"""


def measure(repeats: int = 7) -> str:
    """Run ``repeats`` (+ 1 uncounted) fresh processes; one line of medians and the load."""
    from sklearn.datasets import load_digits

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "digits.npy")
        np.save(path, load_digits().data)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        runs = []
        for i in range(repeats + 1):  # the first run may (re)fill the cache: not counted
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=True,
            )
            if i:
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0]
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return (
        f"import somvq {med['import']:.3f} s, first fit (digits, 16x32, 10 epochs, warm cache) "
        f"{med['first_fit']:.3f} s, second fit {med['second_fit']:.3f} s "
        f"(medians of {len(runs)} fresh processes; load average {load:.2f})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(measure(args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
