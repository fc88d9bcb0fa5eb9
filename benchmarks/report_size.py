"""Size and browser load time of the HTML report (docs/report.md, "Size and speed").

Writes reports for a 16x32 map on digits (labels and 8x8 images) and for 64x64 maps on
digits (64 features) and on 784-feature data (MNIST-sized: planes and 28x28 images for
4096 units), then opens each in headless Chromium (Playwright, the system's chromium) and
times the load: from navigation until Bokeh has drawn the page (its document is idle and
every map's view exists). Each page is opened three times; the median is reported.

    python benchmarks/report_size.py            # prints one line per report

The maps are trained briefly: the report's size and speed depend on the map's shape and
the feature count, not on how well it is trained.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cases():
    from sklearn.datasets import load_digits

    from somvq import KSOM

    digits = load_digits()
    X, y = digits.data, digits.target
    som = KSOM(grid=(16, 32), topology="hexagonal", n_epochs=5, random_state=0).fit(X)
    yield "16x32 hexagonal, digits (1797 x 64), labels, 8x8 images", som, X, y, (8, 8)
    som = KSOM(grid=(64, 64), n_epochs=2, random_state=0).fit(X)
    yield "64x64 rectangular, digits (1797 x 64), labels, 8x8 images", som, X, y, (8, 8)
    rng = np.random.default_rng(0)
    wide = rng.random((5000, 784))
    labels = rng.integers(0, 10, 5000)
    som = KSOM(grid=(64, 64), algorithm="minibatch", n_epochs=1, random_state=0).fit(wide)
    yield "64x64 rectangular, 5000 x 784 (MNIST-sized), labels, 28x28 images", som, wide, labels, (28, 28)


def load_seconds(browser, path: Path) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    started = time.perf_counter()
    page.goto(path.resolve().as_uri())
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle"
        " && ['umatrix', 'hits', 'plane'].every(n => [...Bokeh.index.all_views()].some(v => v.model.name === n))",
        timeout=120000,
        polling=20,
    )
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def main() -> None:
    from playwright.sync_api import sync_playwright

    from somvq import report

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs chromium (apt-get install chromium)")
    folder = Path(tempfile.mkdtemp(prefix="somvq-report-size-"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        for number, (name, som, X, y, shape) in enumerate(cases()):
            path = folder / f"report{number}.html"
            started = time.perf_counter()
            report(som, X, y, path, image_shape=shape)
            written = time.perf_counter() - started
            times = [load_seconds(browser, path) for _ in range(3)]
            print(
                f"{name}: {path.stat().st_size / 1e6:.2f} MB, written in {written:.2f} s, "
                f"loads in {statistics.median(times):.2f} s (median of 3)",
                flush=True,
            )
        browser.close()
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
